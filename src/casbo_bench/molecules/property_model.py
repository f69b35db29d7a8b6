"""The property predictor's network: an E(3)-invariant EGNN regressor of alpha, gap and mu.

The black-box property scores of the molecule benchmark need a model that maps a heavy-atom
3D structure to its properties. The network is the dense EGNN of
:mod:`casbo_bench.molecules.egnn` on one-hot atom types (C, N, O, F) and positions
(Angstrom), then a sum over atoms and a two-layer MLP:

    y_hat = (W_2 silu(W_1 sum_i h_i + b_1) + b_2) * std + mean,   h = EGNN(one_hot, x)

EGNN's node features are invariant under rotations, reflections and translations of the
input, so the prediction is too (tested); the sum makes it invariant under permutations
of the atoms. The sum (rather than a mean) lets extensive properties such as alpha grow
with the molecule. ``mean`` and ``std`` are the training split's, per property, so
:meth:`PropertyPredictor.predict` returns physical units (bohr^3, eV, Debye).

**Heavy atoms only.** QM9's properties depend on the hydrogens, which the predictor never
sees: it is not comparable like for like with EDM's all-atom property classifiers.

Training is :mod:`casbo_bench.molecules.training.predictor`; a stored predictor is read by
:func:`casbo_bench.molecules.checkpoint.load_predictor`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor, nn

from casbo_bench.errors import UserFacingError
from casbo_bench.molecules.atoms import N_TYPES
from casbo_bench.molecules.egnn import EGNN


class PredictorError(UserFacingError, RuntimeError):
    """The predictor cannot be built, trained or run as asked."""


class PropertyPredictor(nn.Module):
    """``y_hat = MLP(sum_i h_i) * std + mean`` with ``h = EGNN(one_hot, x)`` (module docstring).

    Args:
        properties: the predicted properties, in output order.
        hidden: EGNN node feature size.
        n_blocks: EGNN equivariant blocks.
    """

    mean: Tensor
    std: Tensor

    def __init__(self, properties: Sequence[str], hidden: int = 64, n_blocks: int = 4) -> None:
        super().__init__()
        self.properties = tuple(properties)
        self.egnn = EGNN(N_TYPES, hidden, hidden=hidden, n_blocks=n_blocks)
        self.head = nn.Sequential(
            nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, len(self.properties))
        )
        self.register_buffer("mean", torch.zeros(len(self.properties)))
        self.register_buffer("std", torch.ones(len(self.properties)))

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> PropertyPredictor:
        """An untrained predictor of ``options`` (``properties``, ``hidden``, ``n_blocks``:
        what a stored predictor records)."""
        return cls(options["properties"], options["hidden"], options["n_blocks"])

    def forward(self, one_hot: Tensor, positions: Tensor, mask: Tensor) -> Tensor:
        """Standardized predictions, a ``B x P`` tensor.

        Args:
            one_hot: a ``B x N x 4`` tensor of one-hot atom types (zero on padding).
            positions: a ``B x N x 3`` tensor in Angstrom.
            mask: a ``B x N`` tensor, 1 on real atoms.
        """
        h, _ = self.egnn(one_hot, positions, mask)
        return self.head(h.sum(dim=1))

    @torch.no_grad()
    def predict(self, positions: Any, atom_types: Any, batch_size: int = 1024) -> NDArray[Any]:
        """Properties in physical units for a batch of padded heavy-atom structures.

        Args:
            positions: a ``B x N x 3`` array in Angstrom (any origin and orientation).
            atom_types: a ``B x N`` integer array of indices into (C, N, O, F), -1 on padding.
            batch_size: molecules per forward pass.

        Returns:
            A ``B x P`` float64 array, columns :attr:`properties`. Non-finite coordinates
            give NaN rows (the caller decides their penalty).
        """
        device = self.mean.device
        positions_t = torch.as_tensor(np.asarray(positions, dtype=np.float32))
        types_t = torch.as_tensor(np.asarray(atom_types, dtype=np.int64))
        if (
            positions_t.ndim != 3
            or positions_t.shape[2] != 3
            or types_t.shape != (positions_t.shape[:2])
        ):
            raise PredictorError(
                f"predict takes B x N x 3 positions and B x N atom types; got "
                f"{tuple(positions_t.shape)} and {tuple(types_t.shape)}"
            )
        mask = types_t >= 0
        finite = torch.isfinite(positions_t).all(dim=(1, 2))
        positions_t = torch.where(finite.view(-1, 1, 1), positions_t, 0.0)
        one_hot = nn.functional.one_hot(types_t.clamp_min(0), N_TYPES).float()
        one_hot = one_hot * mask.unsqueeze(-1)
        outputs = []
        for start in range(0, len(types_t), batch_size):
            part = slice(start, start + batch_size)
            standardized = self(
                one_hot[part].to(device), positions_t[part].to(device), mask[part].to(device)
            )
            outputs.append((standardized * self.std + self.mean).cpu())
        if not outputs:
            return np.zeros((0, len(self.properties)))
        values = torch.cat(outputs).double().numpy()
        values[~finite.numpy()] = np.nan
        return values
