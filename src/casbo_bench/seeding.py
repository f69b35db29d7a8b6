"""Seeds derived from the experiment axes, so every run is reproducible from its record.

A run is named by its axes (method, problem, d, K, scoring, repetition seed). Each source of
randomness gets its own stream, derived from a purpose label and the axes that should share
it: the problem instance and the common random numbers depend on the problem axes and the
repetition only, so every method meets the same instance and the same fixed later noises at
a given seed (which is what makes paired tests across methods valid).
"""

from __future__ import annotations

import hashlib

import numpy as np


def derive_seed(purpose: str, *axes: object) -> int:
    """A 63-bit seed from a purpose label and axis values, stable across processes.

    >>> derive_seed("instance", "sphere", 10, 1, "final", 0) == derive_seed(
    ...     "instance", "sphere", 10, 1, "final", 0)
    True
    """
    text = "\x1f".join([purpose, *(str(axis) for axis in axes)])
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def derive_rng(purpose: str, *axes: object) -> np.random.Generator:
    """A NumPy generator seeded with :func:`derive_seed` of the same arguments."""
    return np.random.default_rng(derive_seed(purpose, *axes))
