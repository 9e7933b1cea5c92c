"""Kernels compiled for baseline x86-64 (or the platform default elsewhere)."""
