"""Placeholder until the elementwise family lands."""

__all__ = []
