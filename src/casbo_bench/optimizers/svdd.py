"""Soft value-based decoding (SVDD) with a black-box value: at every step M candidate next
states, each scored through its predicted clean sample, one kept by a softmax of the score.

After Li et al. 2024 (arXiv 2408.08252), with the black-box reward of ``x0_hat`` as the
value (their posterior-mean estimate, which needs no value network). Each of ``chains``
parallel chains, at every transition i = 1..S:

1. draws M candidates ``z_s^(m)`` from the pre-trained transition of its state ``z_t`` (one
   denoiser evaluation of ``z_t``, shared by the candidates);
2. scores each candidate's ``x0_hat`` with the black box, ``r_m`` (M calls, M denoiser
   evaluations, whose predictions the next transition reuses);
3. keeps candidate m with probability ``softmax(r / alpha)_m``; ``alpha = 0`` (the
   ``temperature`` option) keeps the argmax (the first of equals).

After S transitions each chain is finished and scored (one call): a completed sample, one
evaluation of the trace. Cost per completed sample: ``S M + 1`` calls (about ``K M``) and
``S M + 1`` denoiser evaluations. The output law is the chains' (uniform weights).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from casbo_bench.names import FreshKind
from casbo_bench.optimizers.base import FloatArray
from casbo_bench.optimizers.steering import (
    SteeringMethod,
    StepwiseProblem,
    Sweep,
    check_integer,
    check_number,
    log_normalized,
)


@dataclass(frozen=True)
class SvddSettings:
    """Attributes: candidates M, temperature alpha (0: argmax), chains per sweep."""

    candidates: int
    temperature: float
    chains: int


def choose(scores: FloatArray, temperature: float, rng: np.random.Generator) -> FloatArray:
    """The kept candidate of each row of a ``B x M`` score array: argmax at temperature 0,
    else a draw from ``softmax(scores / temperature)``.

    >>> choose(np.array([[0.1, 0.5, 0.2]]), 0.0, np.random.default_rng(0)).tolist()
    [1]
    """
    if temperature == 0:
        return np.argmax(scores, axis=1)
    return np.array(
        [rng.choice(len(row), p=log_normalized(row / temperature)) for row in scores],
        dtype=np.int64,
    )


class SoftValueDecoding(SteeringMethod):
    """SVDD with a black-box value (module docstring).

    Args:
        seed: seeds the generator of every noise and every choice.
        candidates: M, candidate next states per step (default 4).
        temperature: alpha >= 0 of the softmax (default 0: argmax).
        chains: chains run side by side in one sweep (default 4; batching only).

    >>> SoftValueDecoding(0, candidates=2).cost_per_sample(20)
    (41.0, 41.0)
    """

    name = "svdd"
    steers = True
    uses_torch = False
    fresh_kind: ClassVar[FreshKind] = "law"

    def __init__(
        self,
        seed: int,
        *,
        candidates: int = 4,
        temperature: float = 0.0,
        chains: int = 4,
        **unknown: Any,
    ) -> None:
        super().__init__(seed, **unknown)
        self.settings = SvddSettings(
            candidates=check_integer("svdd", "candidates", candidates, 1),
            temperature=check_number("svdd", "temperature", temperature, 0.0),
            chains=check_integer("svdd", "chains", chains, 1),
        )

    def cost_per_sample(self, n_transitions: int) -> tuple[float, float]:
        per = float(n_transitions * self.settings.candidates + 1)
        return per, per

    def sweep(self, problem: StepwiseProblem) -> Sweep:
        """``chains`` chains from start to finish, one candidate kept per step."""
        b, m = self.settings.chains, self.settings.candidates
        handles = problem.start(b, self.rng)
        for _ in range(problem.n_transitions):
            candidates = problem.select(handles, np.repeat(np.arange(b), m))
            candidates = problem.step(candidates, self.rng.standard_normal((b * m, problem.dim)))
            candidates, scores = problem.score_x0(candidates)
            kept = choose(
                np.asarray(scores, dtype=float).reshape(b, m), self.settings.temperature, self.rng
            )
            handles = problem.select(candidates, np.arange(b) * m + kept)
        step_losses, details = problem.finish(handles, self.rng.standard_normal((b, problem.dim)))
        return Sweep(np.asarray(step_losses, dtype=float), details, np.full(b, 1.0 / b))
