"""Label maps of a few boxes per class: images with surfaces, not noise."""

import numpy as np


def blobs(rng, shape, C, n=6):
    """A label map of a few boxes per class (surfaces, not noise)."""
    lab = np.zeros(shape, dtype=np.uint8)
    for c in range(1, C):
        for _ in range(n):
            lo = [int(rng.integers(0, s - 2)) for s in shape]
            hi = [min(s, a + int(rng.integers(2, max(3, s // 2)))) for a, s in zip(lo, shape)]
            lab[tuple(slice(a, b) for a, b in zip(lo, hi))] = c
    return lab

