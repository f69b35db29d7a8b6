"""The heavy-atom layout every molecule module shares: elements, molecule size, state width.

Standard library only, so that the task table (:mod:`casbo_bench.molecules.tasks`), and
through it the workflow, can read the layout without numpy, torch or RDKit.

A molecule is at most ``MAX_ATOMS`` heavy atoms of the elements ``ATOM_SYMBOLS``; hydrogens
are implied by valence. Each atom's state in the diffusion model, and so each atom's share
of an injected noise vector, is ``N_FEATURES`` numbers: 3 coordinates, then one entry per
element (the scaled one-hot type).
"""

from __future__ import annotations

ATOM_SYMBOLS: tuple[str, ...] = ("C", "N", "O", "F")
"""The heavy elements of QM9, in the order atom-type indices refer to."""

ATOMIC_NUMBERS: tuple[int, ...] = (6, 7, 8, 9)
"""The atomic number of each element of ``ATOM_SYMBOLS``."""

MAX_ATOMS = 9
"""Heavy atoms of the largest QM9 molecule: the padded size of every stored molecule."""

N_TYPES = len(ATOM_SYMBOLS)
N_FEATURES = 3 + N_TYPES
"""Entries per atom of a state or noise vector: 3 coordinates and 4 atom-type logits."""
