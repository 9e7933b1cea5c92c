"""Placeholder until the rowwise family lands."""

__all__ = []
