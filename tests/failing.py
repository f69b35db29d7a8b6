"""Test-only black boxes that fail on chosen rollouts, and optimizers that record what they
are told or break on cue; :func:`register` puts them next to the registered ones.

A :class:`FailingQuadratic` numbers the distinct rollouts it sees, 1, 2, ... in the order
they first appear, so a rollout keeps its number when the runner evaluates a raising batch
again one rollout at a time (a black box is deterministic given its noise): the budget's
evaluations are rollouts 1..budget, the fresh samples the numbers after them. A
:class:`Fault` makes some of those rollouts fail, in some repetition seeds.
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pytest

from casbo_bench import optimizers, problems
from casbo_bench.analysis import tables
from casbo_bench.optimizers.base import FloatArray, GaussianLaw, Optimizer, SearchSpace
from casbo_bench.problems.base import Problem, RolloutDetails
from casbo_bench.runner import Job
from casbo_bench.seeding import derive_seed

NON_FINITE = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf}
"""The fault kinds that return a non-finite step loss, and the value returned."""

EXCEPTIONS: dict[str, type[BaseException]] = {
    "ValueError": ValueError,
    "RuntimeError": RuntimeError,
    "ZeroDivisionError": ZeroDivisionError,
    "MemoryError": MemoryError,
    "KeyboardInterrupt": KeyboardInterrupt,
}
"""The fault kinds that raise, and the exception raised."""

EVERY = range(1, 10**9)
"""Every rollout number."""


@dataclass(frozen=True)
class Fault:
    """Rollouts ``rollouts`` (1-based, by first appearance) fail as ``kind`` in repetition
    ``seeds`` (None: every seed); a non-finite kind goes into step ``step`` (-1: the last)."""

    kind: str
    rollouts: Container[int] = EVERY
    seeds: Sequence[int] | None = None
    step: int = -1


class FailingQuadratic(Problem):
    """Step j loss ``||xi_j - t_j||^2`` (seeded targets ``t``, ``K x d``) that fails as its
    faults say; it records the number of every rollout it evaluated."""

    name = "failing-quadratic"
    faults: ClassVar[tuple[Fault, ...]] = ()
    details: ClassVar[bool] = False
    instances: ClassVar[list[FailingQuadratic]] = []

    def __init__(
        self,
        dim: int,
        n_steps: int,
        seed: int = 0,
        repetition: int | None = None,
        faults: Sequence[Fault] | None = None,
        details: bool | None = None,
    ) -> None:
        self.dim, self.n_steps = dim, n_steps
        self.targets = np.random.default_rng(seed).normal(size=(n_steps, dim))
        self.optimal_loss = 0.0
        self.numbers: dict[bytes, int] = {}
        self.faults = tuple(
            fault
            for fault in (type(self).faults if faults is None else faults)
            if fault.seeds is None or repetition in fault.seeds
        )
        self.with_details = type(self).details if details is None else details
        self.calls: list[list[int]] = []
        type(self).instances.append(self)

    def number(self, row: FloatArray) -> int:
        return self.numbers.setdefault(row.tobytes(), len(self.numbers) + 1)

    def clean(self, noise: FloatArray) -> FloatArray:
        """The losses without faults."""
        return ((noise - self.targets) ** 2).sum(axis=2)

    def rollout_details(self, noise: FloatArray) -> tuple[FloatArray, RolloutDetails]:
        noise = self.check_noise(noise)
        numbers = [self.number(row) for row in noise]
        self.calls.append(numbers)
        losses = self.clean(noise)
        for fault in self.faults:
            hit = [i for i, number in enumerate(numbers) if number in fault.rollouts]
            if not hit:
                continue
            if fault.kind in NON_FINITE:
                losses[hit, fault.step] = NON_FINITE[fault.kind]
            else:
                raise EXCEPTIONS[fault.kind](f"black box broke on rollout {numbers[hit[0]]}")
        details = {"number": np.array(numbers, dtype=np.int64)} if self.with_details else {}
        return losses, details

    def rollout(self, noise: FloatArray) -> FloatArray:
        return self.rollout_details(noise)[0]


class RecordingWalk(Optimizer):
    """Draws ``N(mean, I)`` on every block; each complete batch moves the mean by -0.1.

    Records what it is told. Breaks with ``breaks_with`` (an exception's name) at its update
    ``breaks_at`` (0: never), or when asked for its first batch with ``breaks_at = -1``; only
    where its seed is ``breaks_for`` unless that is -1.
    """

    name = "recording-walk"
    scope = "per_step"
    instances: ClassVar[list[RecordingWalk]] = []

    def __init__(
        self,
        space: SearchSpace,
        seed: int,
        *,
        batch_size: int = 4,
        breaks_at: int = 0,
        breaks_with: str = "RuntimeError",
        breaks_for: int = -1,
    ) -> None:
        super().__init__(space, seed)
        self.batch_size, self.breaks_with = batch_size, breaks_with
        self.breaks_at = breaks_at if breaks_for in (-1, self.seed) else 0
        self.mean = np.zeros((space.n_blocks, space.dim))
        self._rng = np.random.default_rng(self.seed)
        self.asked: list[FloatArray] = []
        self.told: list[FloatArray] = []
        self.updates = 0
        type(self).instances.append(self)

    def _break(self) -> None:
        error = EXCEPTIONS.get(self.breaks_with) or getattr(optimizers, self.breaks_with)
        raise error(f"{self.name} broke")

    def _ask(self) -> FloatArray:
        if self.breaks_at == -1:
            self._break()
        shape = (self.batch_size, self.space.n_blocks, self.space.dim)
        return self.mean + self._rng.standard_normal(shape)

    def tell(self, candidates: FloatArray, losses: FloatArray) -> None:
        self.asked.append(np.array(candidates))
        self.told.append(np.array(losses))
        super().tell(candidates, losses)

    def _tell(self, candidates: FloatArray, losses: FloatArray) -> None:
        self.updates += 1
        if self.updates == self.breaks_at:
            self._break()
        self.mean = self.mean - 0.1

    def gaussian_law(self) -> GaussianLaw:
        b, d = self.space.n_blocks, self.space.dim
        return GaussianLaw(self.mean.copy(), np.broadcast_to(np.eye(d), (b, d, d)).copy())

    def sample_final(self, n: int, rng: np.random.Generator) -> FloatArray:
        return self.mean + rng.standard_normal((n, self.space.n_blocks, self.space.dim))

    def resolved_settings(self) -> dict[str, Any]:
        return {"batch_size": self.batch_size}

    def history(self) -> tuple[FloatArray, FloatArray]:
        """Every candidate told (``n x B x d``) and the losses told with it (``n x B``)."""
        return np.concatenate(self.asked), np.concatenate(self.told)


class RecordingLatentWalk(RecordingWalk):
    name = "recording-latent-walk"
    scope = "latent"
    instances: ClassVar[list[RecordingWalk]] = []


TEST_PROBLEMS: dict[str, type[FailingQuadratic]] = {FailingQuadratic.name: FailingQuadratic}
TEST_OPTIMIZERS: dict[str, type[RecordingWalk]] = {
    cls.name: cls for cls in (RecordingWalk, RecordingLatentWalk)
}


def repetition_of(name: str, dim: int, n_steps: int, scoring: str, instance: int) -> int | None:
    """The repetition seed (< 100) whose instance seed is ``instance``, or None."""
    for seed in range(100):
        if derive_seed("instance", name, dim, n_steps, scoring, seed) == instance:
            return seed
    return None


def register(
    monkeypatch: pytest.MonkeyPatch,
    faults: Sequence[Fault] = (),
    details: bool = False,
    broken_seeds: Sequence[int] = (),
) -> None:
    """Register the test problem (failing as ``faults`` say; with a ``number`` detail when
    ``details``; raising RuntimeError when built for a seed of ``broken_seeds``) and the
    recording optimizers beside the real ones, for the runner and the command line."""
    real_make, real_problems = problems.make_problem, problems.available_problems
    real_get, real_optimizers = optimizers.get_optimizer, optimizers.available_optimizers

    def make_problem(
        name: str, dim: int, n_steps: int = 1, scoring: str = "final", seed: int = 0, **options: Any
    ) -> Problem:
        if name not in TEST_PROBLEMS:
            return real_make(name, dim, n_steps, scoring, seed, **options)
        repetition = repetition_of(name, dim, n_steps, scoring, seed)
        if repetition in broken_seeds:
            raise RuntimeError(f"cannot build the instance of seed {repetition}")
        return TEST_PROBLEMS[name](dim, n_steps, seed, repetition)

    def get_optimizer(name: str) -> type[Optimizer]:
        return TEST_OPTIMIZERS[name] if name in TEST_OPTIMIZERS else real_get(name)

    monkeypatch.setattr(FailingQuadratic, "faults", tuple(faults))
    monkeypatch.setattr(FailingQuadratic, "details", details)
    monkeypatch.setattr(FailingQuadratic, "instances", [])
    for cls in TEST_OPTIMIZERS.values():
        monkeypatch.setattr(cls, "instances", [])
    monkeypatch.setattr(problems, "make_problem", make_problem)
    monkeypatch.setattr(problems, "available_problems", lambda: [*real_problems(), *TEST_PROBLEMS])
    monkeypatch.setattr(optimizers, "get_optimizer", get_optimizer)
    monkeypatch.setattr(
        optimizers, "available_optimizers", lambda: [*real_optimizers(), *TEST_OPTIMIZERS]
    )
    # The tables read each optimizer's fresh kind from the registry's sources; the test
    # optimizers say theirs in their class.
    real_kinds = tables.registered_fresh_kinds
    monkeypatch.setattr(
        tables,
        "registered_fresh_kinds",
        lambda: {**real_kinds(), **{n: c.fresh_kind for n, c in TEST_OPTIMIZERS.items()}},
    )


def failing_job(**changes: Any) -> Job:
    """A job of the recording walk on the failing quadratic (d = 3, K = 2), one seed, 12
    evaluations and 8 fresh samples unless ``changes`` says otherwise."""
    settings: dict[str, Any] = {
        "optimizer": "recording-walk",
        "problem": "failing-quadratic",
        "dim": 3,
        "n_steps": 2,
        "seeds": (0,),
        "budget": 12,
        "fresh_samples": 8,
    }
    return Job(**{**settings, **changes})
