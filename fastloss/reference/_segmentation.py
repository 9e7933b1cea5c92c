"""Placeholder until the segmentation family lands."""

__all__ = []
