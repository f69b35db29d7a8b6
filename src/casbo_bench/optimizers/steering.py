"""The steering contract: methods that drive a sampler one reverse step at a time.

Read this module after :mod:`casbo_bench.optimizers.base`. A steering method (SMC, SVDD)
does not ask for noise vectors: it runs the problem's sampler one transition at a time on
opaque handles (:class:`StepwiseProblem`), scores predicted clean samples ``x0_hat`` with the
black box between transitions, branches by :meth:`StepwiseProblem.select` (never replaying a
prefix) and finishes chains into completed samples. The runner calls :meth:`SteeringMethod.sweep`
until both budgets are spent (black-box calls and denoiser evaluations,
docs/method.md section 7b); each completed sample is one evaluation of the trace, and only
completed samples count for best-so-far and the fresh-sample measure: a score of an
``x0_hat`` is a cost, never a result.

Like an ask/tell optimizer, a steering method sees vectors and scores only (the handles are
the problem's; the method never looks inside), keeps its hyperparameters in one frozen
settings dataclass, and draws all its randomness from the integer ``seed`` it is built with.
It is registered beside the optimizers (``casbo-bench list``) with a literal ``steers = True``
that the registry reads without importing it.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from casbo_bench.names import FreshKind
from casbo_bench.optimizers.base import FloatArray, OptimizerError


@runtime_checkable
class StepwiseProblem(Protocol):
    """A sampler a steering method can run one reverse transition at a time.

    Handles are opaque batches of ``n`` partial chains, all at the same transition. Every
    black-box call and every denoiser evaluation is counted by the problem itself.
    """

    dim: int
    n_steps: int

    @property
    def n_transitions(self) -> int:
        """S, the transitions between :meth:`start` and :meth:`finish`."""

    def start(self, n: int, rng: np.random.Generator) -> Any:
        """``n`` chains at their initial latents, drawn from ``rng``."""

    def step(self, handles: Any, noise: FloatArray) -> Any:
        """One transition of every chain with its noise (a ``n x d`` array)."""

    def select(self, handles: Any, index: Sequence[int] | NDArray[Any]) -> Any:
        """The chains ``index`` (repeats allowed), as they are: nothing replayed."""

    def score_x0(self, handles: Any) -> tuple[Any, FloatArray]:
        """The handles (predictions kept) and the black-box score (``-loss``, maximized) of
        each chain's predicted clean sample: one counted call each."""

    def finish(self, handles: Any, noise: FloatArray) -> tuple[FloatArray, dict[str, Any]]:
        """Completed samples of chains after S transitions with their last noise (``n x d``):
        the ``n x K`` step losses and details of a rollout (one counted call each)."""


@dataclass(frozen=True)
class Sweep:
    """The completed samples of one sweep of a steering method.

    Attributes:
        step_losses: the ``n x K`` step losses of the completed samples (as a rollout's).
        details: the problem's ``n``-entry details of them.
        weights: ``n`` non-negative weights summing to 1: the law of the method's output
            over these samples (SMC: the final importance weights; SVDD: uniform). The
            fresh-sample measure is the weighted mean score of fresh sweeps.
    """

    step_losses: FloatArray
    details: dict[str, Any]
    weights: FloatArray


def log_normalized(log_weights: FloatArray) -> FloatArray:
    """Weights ``w_i = exp(l_i) / sum_j exp(l_j)`` from log-weights, computed stably
    (subtracting the maximum first; ``-inf`` entries get 0; uniform where every entry is
    ``-inf``, as when no sample of a sweep could be scored).

    >>> log_normalized(np.log(np.array([1.0, 3.0]))).tolist()
    [0.25, 0.75]
    """
    log_weights = np.asarray(log_weights, dtype=np.float64)
    if not np.isfinite(log_weights.max()):
        return np.full(len(log_weights), 1.0 / len(log_weights))
    shifted = log_weights - np.max(log_weights)
    weights = np.exp(shifted)
    return weights / weights.sum()


class SteeringMethod(ABC):
    """Base class of every steering method (module docstring).

    Subclasses set ``name``, ``steers = True``, ``uses_torch``, ``fresh_kind`` and
    ``settings`` and implement :meth:`sweep`.

    Attributes:
        seed: the integer seed of all the method's randomness.
        rng: the NumPy generator seeded by it (every noise and every choice).
    """

    name: ClassVar[str]
    steers: ClassVar[bool] = True
    uses_torch: ClassVar[bool] = False
    fresh_kind: ClassVar[FreshKind] = "law"
    settings: Any

    def __init__(self, seed: int, **options: Any) -> None:
        if options:
            raise OptimizerError(
                f"steering method {self.name!r} has no option(s) {sorted(options)}; remove "
                f"them from the config"
            )
        self.seed = int(seed)
        self.rng = np.random.default_rng(self.seed)

    def resolved_settings(self) -> dict[str, Any]:
        """Every setting this method runs with (recorded in the trace's provenance)."""
        return dataclasses.asdict(self.settings)

    @abstractmethod
    def sweep(self, problem: StepwiseProblem) -> Sweep:
        """Run the sampler from start to finish once, steered; the completed samples."""

    @abstractmethod
    def cost_per_sample(self, n_transitions: int) -> tuple[float, float]:
        """``(calls, denoiser evaluations)`` per completed sample on a sampler of
        ``n_transitions`` transitions: what the config check sizes budgets with."""


def check_integer(method: str, option: str, value: Any, least: int) -> int:
    """``value`` as an int >= ``least``, else an :class:`OptimizerError` naming the option."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < least:
        raise OptimizerError(f"{method}: {option} must be an integer >= {least}; got {value!r}")
    return int(value)


def check_number(method: str, option: str, value: Any, least: float) -> float:
    """``value`` as a finite float >= ``least``, else an :class:`OptimizerError`."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float | np.integer | np.floating)
        or not np.isfinite(value)
        or value < least
    ):
        raise OptimizerError(f"{method}: {option} must be a number >= {least}; got {value!r}")
    return float(value)
