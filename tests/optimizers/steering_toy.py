"""A toy stepwise problem for the steering methods' tests: a Gaussian random walk whose
predicted clean sample is the current state, scored by ``-|x - target|^2``.

Every call is counted the way :class:`casbo_bench.molecules.problem.MoleculeProblem` counts
them (one black-box call per scored ``x0_hat`` and per finished chain, one denoiser
evaluation per chain per transition and one at the end), and every transition applied to a
chain is logged, so a test can tell whether a prefix was ever replayed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from casbo_bench.optimizers.base import FloatArray


@dataclass(frozen=True)
class ToyHandles:
    states: FloatArray  # n x d
    index: int


class ToyWalk:
    """``x_{i} = x_{i-1} + scale * xi_i`` for S transitions from ``x_0 ~ N(0, I)``."""

    def __init__(self, dim: int = 2, transitions: int = 6, target: float = 1.0) -> None:
        self.dim, self.target, self.scale = dim, target, 0.5
        self._transitions = transitions
        self.n_steps = transitions + 2
        self.calls = 0
        self.denoiser_evals = 0
        self.transitions_applied = 0  # chain-transitions taken in all

    @property
    def n_transitions(self) -> int:
        return self._transitions

    def score(self, states: FloatArray) -> FloatArray:
        return -np.sum((states - self.target) ** 2, axis=1)

    def start(self, n: int, rng: np.random.Generator) -> ToyHandles:
        return ToyHandles(rng.standard_normal((n, self.dim)), 0)

    def step(self, handles: ToyHandles, noise: FloatArray) -> ToyHandles:
        assert handles.index < self._transitions
        self.denoiser_evals += len(handles.states)
        self.transitions_applied += len(handles.states)
        return ToyHandles(handles.states + self.scale * np.asarray(noise), handles.index + 1)

    def select(self, handles: ToyHandles, index: Sequence[int] | NDArray[Any]) -> ToyHandles:
        return ToyHandles(handles.states[np.asarray(index)], handles.index)

    def score_x0(self, handles: ToyHandles) -> tuple[ToyHandles, FloatArray]:
        self.calls += len(handles.states)
        return handles, self.score(handles.states)

    def finish(self, handles: ToyHandles, noise: FloatArray) -> tuple[FloatArray, dict[str, Any]]:
        assert handles.index == self._transitions
        self.calls += len(handles.states)
        self.denoiser_evals += len(handles.states)
        losses = np.zeros((len(handles.states), self.n_steps))
        losses[:, -1] = -self.score(handles.states)
        return losses, {"x": handles.states[:, 0].copy()}
