"""Kernels compiled for x86-64-v4 (AVX-512, 512-bit vectors); chosen at import when the CPU
has them."""
