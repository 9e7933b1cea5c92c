"""Kernels compiled for x86-64-v3 (AVX2, FMA, BMI2); chosen at import when the CPU has them."""
