"""Placeholder until the rowwise family lands (defines no public name yet)."""

__all__ = []
