"""Placeholder until the segmentation family lands (defines no public name yet)."""

__all__ = []
