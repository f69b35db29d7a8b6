"""Feynman-Kac steering (SMC) with black-box rewards: P particles, resampled by potentials of
the predicted clean sample's score.

After Singhal et al. 2025 (arXiv 2501.06848), in the form that needs no gradient: the
proposals are the pre-trained transitions themselves (no twisting). P particles run the
sampler; after transition i (i = 1..S) with ``i >= start_step`` and ``(i - start_step) %
interval == 0`` (and ``i < S``) each particle's ``x0_hat`` is scored, ``r_i``, by the black
box (one call per particle), and the particles get the potential

    diff:  G_i = exp(lambda (r_i - r_prev))      (r_prev: the score at the last
                                                  resampling step, 0 before the first)
    max:   G_i = exp(lambda max_{j <= i} r_j)
    sum:   G_i = exp(lambda sum_{j <= i} r_j)

and are resampled multinomially with probabilities proportional to their accumulated weights
``w <- w G_i`` (every time, or with ``adaptive`` only when the effective sample size
``(sum w)^2 / sum w^2`` falls below P/2; w is reset to 1 after a resampling). At the last
step the completed samples are scored (one call each, the trace's evaluations) with the same
potential, where for ``max`` and ``sum`` the weight is divided by the product of the earlier
potentials along the particle's ancestry (for ``diff`` the product telescopes to
``exp(lambda r_final)`` already): the final weights target ``p(x_0) exp(lambda r(x_0))``.

Cost per completed sample: ``S + 1`` denoiser evaluations (the ``x0_hat`` uses the
prediction the next transition needs) and ``1 + #resampling steps`` black-box calls. A sweep
completes P samples; all of them are evaluations of the trace, and the final weights are
the law of the method's output (the fresh-sample measure).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from casbo_bench.names import FreshKind
from casbo_bench.optimizers.base import FloatArray, OptimizerError
from casbo_bench.optimizers.steering import (
    SteeringMethod,
    StepwiseProblem,
    Sweep,
    check_integer,
    check_number,
    log_normalized,
)

POTENTIALS = ("diff", "max", "sum")
"""The potentials of the module docstring."""


@dataclass(frozen=True)
class SmcSettings:
    """Attributes: particles P, lam (lambda), interval r, start_step, potential, adaptive."""

    particles: int
    lam: float
    interval: int
    start_step: int
    potential: str
    adaptive: bool


def effective_sample_size(log_weights: FloatArray) -> float:
    """``(sum w)^2 / sum w^2`` of the weights ``exp(log_weights)`` (1 to P).

    >>> effective_sample_size(np.zeros(4))
    4.0
    """
    weights = log_normalized(log_weights)
    return float(1.0 / np.sum(weights**2))


def resampling_steps(n_transitions: int, interval: int, start_step: int) -> list[int]:
    """The transitions i < S after which ``x0_hat`` is scored and the particles resampled.

    >>> resampling_steps(20, 5, 5)
    [5, 10, 15]
    """
    return [i for i in range(max(start_step, 1), n_transitions) if (i - start_step) % interval == 0]


class _Potential:
    """The per-particle statistics of one potential and its log-values."""

    def __init__(self, kind: str, lam: float, particles: int) -> None:
        self.kind, self.lam = kind, lam
        self.previous = np.zeros(particles)  # diff: r at the last scored step
        self.running = np.full(particles, -np.inf) if kind == "max" else np.zeros(particles)
        self.log_product = np.zeros(particles)  # sum of log G along the ancestry

    def intermediate(self, scores: FloatArray) -> FloatArray:
        """``log G_i`` of the particles with scores ``r_i``; updates the statistics."""
        if self.kind == "diff":
            log_g = self.lam * (scores - self.previous)
            self.previous = scores.copy()
        elif self.kind == "max":
            self.running = np.maximum(self.running, scores)
            log_g = self.lam * self.running
        else:
            self.running = self.running + scores
            log_g = self.lam * self.running
        self.log_product = self.log_product + log_g
        return log_g

    def final(self, scores: FloatArray) -> FloatArray:
        """``log G`` at the last step: for max and sum divided by the earlier product."""
        if self.kind == "diff":
            return self.lam * (scores - self.previous)
        if self.kind == "max":
            return self.lam * np.maximum(self.running, scores) - self.log_product
        return self.lam * (self.running + scores) - self.log_product

    def select(self, index: Any) -> None:
        """Keep the statistics of the resampled ancestors ``index``."""
        self.previous = self.previous[index]
        self.running = self.running[index]
        self.log_product = self.log_product[index]


class FeynmanKacSteering(SteeringMethod):
    """SMC / Feynman-Kac steering with black-box rewards (module docstring).

    Args:
        seed: seeds the generator of every noise and every resampling draw.
        particles: P (default 8).
        lam: lambda, the potentials' inverse temperature (default 10).
        interval: r, transitions between resampling steps (default 5).
        start_step: the first transition after which particles are scored (default 5).
        potential: ``"diff"`` (default), ``"max"`` or ``"sum"``.
        adaptive: resample only when the effective sample size falls below P/2
            (default False: at every resampling step).

    >>> FeynmanKacSteering(0, particles=4).cost_per_sample(20)
    (4.0, 21.0)
    """

    name = "smc"
    steers = True
    uses_torch = False
    fresh_kind: ClassVar[FreshKind] = "law"

    def __init__(
        self,
        seed: int,
        *,
        particles: int = 8,
        lam: float = 10.0,
        interval: int = 5,
        start_step: int = 5,
        potential: str = "diff",
        adaptive: bool = False,
        **unknown: Any,
    ) -> None:
        super().__init__(seed, **unknown)
        if potential not in POTENTIALS:
            raise OptimizerError(
                f"smc: potential must be one of {', '.join(POTENTIALS)}; got {potential!r}"
            )
        if not isinstance(adaptive, bool):
            raise OptimizerError(f"smc: adaptive must be true or false; got {adaptive!r}")
        self.settings = SmcSettings(
            particles=check_integer("smc", "particles", particles, 1),
            lam=check_number("smc", "lam", lam, 0.0),
            interval=check_integer("smc", "interval", interval, 1),
            start_step=check_integer("smc", "start_step", start_step, 0),
            potential=potential,
            adaptive=adaptive,
        )

    def cost_per_sample(self, n_transitions: int) -> tuple[float, float]:
        steps = resampling_steps(n_transitions, self.settings.interval, self.settings.start_step)
        return float(1 + len(steps)), float(n_transitions + 1)

    def _resample(self, log_weights: FloatArray) -> Any:
        """Multinomial ancestor indices, or None where the adaptive rule keeps them."""
        p = self.settings.particles
        if self.settings.adaptive and effective_sample_size(log_weights) >= p / 2:
            return None
        return self.rng.choice(p, size=p, replace=True, p=log_normalized(log_weights))

    def sweep(self, problem: StepwiseProblem) -> Sweep:
        """P particles from start to finish, resampled at the resampling steps."""
        p, settings = self.settings.particles, self.settings
        scored = set(
            resampling_steps(problem.n_transitions, settings.interval, settings.start_step)
        )
        potential = _Potential(settings.potential, settings.lam, p)
        log_weights = np.zeros(p)
        handles = problem.start(p, self.rng)
        for i in range(1, problem.n_transitions + 1):
            handles = problem.step(handles, self.rng.standard_normal((p, problem.dim)))
            if i not in scored:
                continue
            handles, scores = problem.score_x0(handles)
            log_weights = log_weights + potential.intermediate(np.asarray(scores, dtype=float))
            ancestors = self._resample(log_weights)
            if ancestors is not None:
                handles = problem.select(handles, ancestors)
                potential.select(ancestors)
                log_weights = np.zeros(p)
        step_losses, details = problem.finish(handles, self.rng.standard_normal((p, problem.dim)))
        scores = -np.asarray(step_losses, dtype=float).sum(axis=1)
        final = log_weights + potential.final(np.where(np.isfinite(scores), scores, -np.inf))
        return Sweep(np.asarray(step_losses, dtype=float), details, log_normalized(final))
