"""Placeholder until the elementwise family lands (defines no public name yet)."""

__all__ = []
