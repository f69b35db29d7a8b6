"""The runner: one optimizer on one problem family for a batch of repetition seeds.

Read :class:`Job` (what is run) and :func:`run_job` (how) first. For every repetition seed
``s`` the runner builds the problem instance and the optimizer from seeds derived from the
experiment axes (``docs/architecture.md``), spends the budget in evaluations (one rollout
is one evaluation), records one trace row per evaluation, and measures the tuned sampler
with fresh rollouts once the budget is spent.

The problem speaks noise (``n x K x d``) and step losses (``n x K``); the optimizer speaks
candidates (``n x B x d``) and block losses (``n x B``). A :class:`Scope` translates:

- :class:`PerStepScope` (B = K): the candidates are the noises, the optimizer is told the
  step losses.
- :class:`LatentScope` (B = 1): the candidate is the initial latent ``noise[:, 0]``; the
  later noises ``noise[:, 1:]`` are one fixed draw from N(0, I) (common random numbers,
  shared by every latent method at a given seed), and the optimizer is told the rollout
  loss as an ``n x 1`` array.

Nothing here assumes a test function: any :class:`~casbo_bench.problems.base.Problem`
works, and the exact expected loss is recorded only where the problem has one.
"""

from __future__ import annotations

import inspect
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from casbo_bench import optimizers, problems
from casbo_bench.errors import UserFacingError
from casbo_bench.names import DEVICE_NAMES, SCORINGS
from casbo_bench.optimizers.base import (
    FloatArray,
    GaussianLaw,
    NonFiniteLossError,
    Optimizer,
    OptimizerError,
    SearchSpace,
)
from casbo_bench.problems.base import Problem, ProblemError, RolloutDetails
from casbo_bench.schemas.trace import DETAIL_PREFIX, TRACE_COLUMNS
from casbo_bench.seeding import derive_seed

logger = logging.getLogger(__name__)


class JobError(UserFacingError, ValueError):
    """A job was asked for with an impossible size, budget, seed list or option."""


@dataclass(frozen=True)
class Job:
    """One optimizer on one problem family for a batch of repetition seeds.

    Attributes:
        optimizer: registry name of the optimizer (``casbo_bench.optimizers``).
        problem: registry name of the problem family (``casbo_bench.problems``).
        dim: d, the size of each injected noise vector.
        seeds: the repetition seeds (non-negative, distinct).
        budget: evaluations (rollouts) per repetition.
        n_steps: K, the number of injections (1 = plain problem).
        scoring: ``"final"`` or ``"cumulative"``.
        label: the method label written to the trace (default: the optimizer name); a
            variant with its own options gets its own label, and its own seed stream.
        options: keyword options of the optimizer (its published defaults when empty).
        fresh_samples: M, the fresh rollouts of the fresh-sample measure.
        record_expected_loss: record the exact J(theta_t) per batch, where the problem has
            a closed form and the optimizer a Gaussian law.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``, handed to optimizers whose constructor
            takes a ``device`` argument, and to problems that run a model (molecule tasks).
        models_dir: the folder of the stored models, for problems that read them (molecule
            tasks; None: their default, ``models`` in the current folder).
    """

    optimizer: str
    problem: str
    dim: int
    seeds: tuple[int, ...]
    budget: int
    n_steps: int = 1
    scoring: str = "final"
    label: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    fresh_samples: int = 64
    record_expected_loss: bool = False
    device: str = "cpu"
    models_dir: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "seeds", tuple(self.seeds))
        object.__setattr__(self, "options", dict(self.options))
        for name in ("dim", "n_steps", "budget", "fresh_samples"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise JobError(f"{name} must be an integer >= 1; got {value!r}")
        if not self.seeds:
            raise JobError("give at least one repetition seed")
        if any(
            isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0
            for seed in self.seeds
        ):
            raise JobError(f"seeds must be integers >= 0; got {list(self.seeds)}")
        if len(set(self.seeds)) != len(self.seeds):
            raise JobError(f"seeds must be distinct (each is one run); got {list(self.seeds)}")
        if self.scoring not in SCORINGS:
            raise JobError(f"scoring must be one of {', '.join(SCORINGS)}; got {self.scoring!r}")
        if self.device not in DEVICE_NAMES:
            raise JobError(f"device must be one of {', '.join(DEVICE_NAMES)}; got {self.device!r}")
        if self.label is not None and not self.label:
            raise JobError("label must be a non-empty string (or left out for the optimizer name)")
        if "device" in self.options:
            raise JobError(
                "give the device with the job's device argument (--device), not as "
                "an optimizer option"
            )

    @property
    def method(self) -> str:
        """The method label written to the trace."""
        return self.label or self.optimizer

    def arguments(self) -> dict[str, Any]:
        """The job as a plain dict (for provenance)."""
        return {
            "method": self.method,
            "optimizer": self.optimizer,
            "options": dict(self.options),
            "problem": self.problem,
            "dim": int(self.dim),
            "n_steps": int(self.n_steps),
            "scoring": self.scoring,
            "seeds": [int(seed) for seed in self.seeds],
            "budget": int(self.budget),
            "fresh_samples": int(self.fresh_samples),
            "record_expected_loss": bool(self.record_expected_loss),
            "device": self.device,
            "models_dir": self.models_dir,
        }


@dataclass(frozen=True)
class RepetitionSeeds:
    """The four seed streams of one repetition (see ``docs/architecture.md``).

    Attributes:
        instance: the problem instance, shared by all methods.
        crn: the fixed later noises of latent methods, shared by all latent methods.
        optimizer: the optimizer's own randomness, one method only.
        fresh: the fresh rollouts after the budget, shared by all methods.
    """

    instance: int
    crn: int
    optimizer: int
    fresh: int

    @classmethod
    def derive(cls, job: Job, seed: int) -> RepetitionSeeds:
        """The seeds of repetition ``seed`` of ``job``."""
        axes = (job.problem, job.dim, job.n_steps, job.scoring, seed)
        return cls(
            instance=derive_seed("instance", *axes),
            crn=derive_seed("crn", *axes),
            optimizer=derive_seed("optimizer", job.method, *axes),
            fresh=derive_seed("fresh", *axes),
        )


class Scope(ABC):
    """Translation between an optimizer's blocks and a problem's ``K`` noises.

    Attributes:
        space: the search space the optimizer is built on.
    """

    space: SearchSpace

    @abstractmethod
    def noise(self, candidates: FloatArray) -> FloatArray:
        """The ``n x K x d`` noises of ``n x B x d`` candidates."""

    @abstractmethod
    def feedback(self, step_losses: FloatArray) -> FloatArray:
        """The ``n x B`` losses the optimizer is told, from ``n x K`` step losses."""

    @abstractmethod
    def moments(self, law: GaussianLaw) -> tuple[FloatArray, FloatArray]:
        """Per-step noise means (``K x d``) and covariances (``K x d x d``) of a block law."""

    @abstractmethod
    def fresh_noise(self, optimizer: Optimizer, n: int, rng: np.random.Generator) -> FloatArray:
        """``n x K x d`` fresh noises of the tuned sampler, for the fresh-sample measure."""


class PerStepScope(Scope):
    """B = K: every injected noise is searched, and the step losses are told back."""

    def __init__(self, n_steps: int, dim: int, initial_scale: float = 1.0) -> None:
        self.space = SearchSpace(n_blocks=n_steps, dim=dim, initial_scale=initial_scale)

    def noise(self, candidates: FloatArray) -> FloatArray:
        return candidates

    def feedback(self, step_losses: FloatArray) -> FloatArray:
        return step_losses

    def moments(self, law: GaussianLaw) -> tuple[FloatArray, FloatArray]:
        return np.asarray(law.means, dtype=np.float64), np.asarray(
            law.covariances, dtype=np.float64
        )

    def fresh_noise(self, optimizer: Optimizer, n: int, rng: np.random.Generator) -> FloatArray:
        return _checked_final(optimizer, n, rng)


class LatentScope(Scope):
    """B = 1: the initial latent is searched; the later ``K - 1`` noises are fixed.

    Args:
        common_noise: the ``(K - 1) x d`` fixed later noises (common random numbers).
        initial_scale: the problem's
            :attr:`~casbo_bench.problems.base.Problem.initial_scale`.
    """

    def __init__(self, common_noise: FloatArray, initial_scale: float = 1.0) -> None:
        self.common_noise = np.asarray(common_noise, dtype=np.float64)
        self.space = SearchSpace(
            n_blocks=1, dim=self.common_noise.shape[1], initial_scale=initial_scale
        )

    def noise(self, candidates: FloatArray) -> FloatArray:
        later = np.broadcast_to(self.common_noise, (candidates.shape[0], *self.common_noise.shape))
        return np.concatenate([candidates, later], axis=1)

    def feedback(self, step_losses: FloatArray) -> FloatArray:
        return step_losses.sum(axis=1, keepdims=True)

    def moments(self, law: GaussianLaw) -> tuple[FloatArray, FloatArray]:
        # The later noises are constants: means at the fixed draw, zero covariance.
        n_later, dim = self.common_noise.shape
        means = np.concatenate([np.asarray(law.means, dtype=np.float64)[:1], self.common_noise])
        covariances = np.concatenate(
            [np.asarray(law.covariances, dtype=np.float64)[:1], np.zeros((n_later, dim, dim))]
        )
        return means, covariances

    def fresh_noise(self, optimizer: Optimizer, n: int, rng: np.random.Generator) -> FloatArray:
        latent = _checked_final(optimizer, n, rng)
        n_later, dim = self.common_noise.shape
        return np.concatenate([latent, rng.standard_normal((n, n_later, dim))], axis=1)


def _checked_final(optimizer: Optimizer, n: int, rng: np.random.Generator) -> FloatArray:
    samples = np.asarray(optimizer.sample_final(n, rng), dtype=np.float64)
    expected = (n, optimizer.space.n_blocks, optimizer.space.dim)
    if samples.shape != expected:
        raise OptimizerError(
            f"{optimizer.name}: sample_final({n}) returned shape {samples.shape}; "
            f"expected {expected}"
        )
    return samples


def make_scope(
    scope: str, n_steps: int, dim: int, crn_seed: int, initial_scale: float = 1.0
) -> Scope:
    """The :class:`Scope` named ``scope`` for a problem of ``n_steps`` noises of size ``dim``.

    ``crn_seed`` seeds the ``(K - 1) x d`` N(0, I) draw of the fixed later noises (the
    pre-trained sampler's law); ``initial_scale`` is the problem's initial law, where every
    method starts.
    """
    if scope == "per_step":
        return PerStepScope(n_steps, dim, initial_scale)
    if scope == "latent":
        common_noise = np.random.default_rng(crn_seed).standard_normal((n_steps - 1, dim))
        return LatentScope(common_noise, initial_scale)
    raise JobError(f"unknown optimizer scope {scope!r}; an optimizer's scope is per_step or latent")


def accepted_options(optimizer_class: type[Optimizer]) -> list[str]:
    """The keyword options the constructor of ``optimizer_class`` accepts.

    An ``__init__`` that forwards ``**options`` to its parent accepts the parent's options
    too, so the walk goes up the class hierarchy until an ``__init__`` without
    ``**options``, or the :class:`Optimizer` base (whose ``**options`` rejects any).
    """
    keyword = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    names: list[str] = []
    for cls in optimizer_class.__mro__:
        if cls is Optimizer:
            break
        if "__init__" not in vars(cls):
            continue
        parameters = inspect.signature(vars(cls)["__init__"]).parameters
        names += [
            name
            for name, parameter in parameters.items()
            if parameter.kind in keyword and name not in ("self", "space", "seed")
        ]
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
            break
    return list(dict.fromkeys(names))


def _problem_options(job: Job) -> dict[str, Any]:
    """``device`` and ``models_dir`` for problem families whose builder takes them (the
    molecule tasks: where the sampler runs, where its models are).

    Raises:
        ProblemError: a ``models_dir`` for a problem that reads no models.
    """
    for family in problems.FAMILIES.values():
        if job.problem in family.names():
            takes = inspect.signature(family.build).parameters
            if job.models_dir is not None and "models_dir" not in takes:
                raise ProblemError(
                    f"{job.problem} reads no stored models; leave out the models folder "
                    f"(--models-dir)"
                )
            given = {"device": job.device, "models_dir": job.models_dir}
            return {n: v for n, v in given.items() if n in takes and v is not None}
    return {}


def _optimizer_options(optimizer_class: type[Optimizer], job: Job) -> dict[str, Any]:
    """The job's options, plus ``device`` where the optimizer's constructor takes one.

    Raises:
        OptimizerError: an option the optimizer's constructor does not take (the message
            lists the ones it does).
    """
    known = accepted_options(optimizer_class)
    options = dict(job.options)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise OptimizerError(
            f"optimizer {job.optimizer!r} has no option(s) {unknown}; its options are "
            f"{', '.join(known) or 'none'}"
        )
    if "device" in known:
        options["device"] = job.device
    return options


@dataclass
class _Record:
    """Per-evaluation columns of one repetition, filled batch by batch."""

    iteration: list[FloatArray] = field(default_factory=list)
    loss: list[FloatArray] = field(default_factory=list)
    wall_time: list[FloatArray] = field(default_factory=list)
    expected_loss: list[FloatArray] = field(default_factory=list)
    safeguard_events: list[FloatArray] = field(default_factory=list)
    details: list[RolloutDetails] = field(default_factory=list)

    def detail_columns(self) -> dict[str, Any]:
        """The problem's rollout details as trace columns ``detail_<name>``, one per row."""
        if not self.details or not self.details[0]:
            return {}
        return {
            f"{DETAIL_PREFIX}{name}": np.concatenate([batch[name] for batch in self.details])
            for name in self.details[0]
        }


def _check_details(
    problem: Problem, details: RolloutDetails, n: int, first: RolloutDetails | None
) -> None:
    """Refuse details that are not one entry per rollout, or whose keys differ from the
    ``first`` batch's."""
    wrong = {name: np.shape(values) for name, values in details.items() if np.shape(values) != (n,)}
    if wrong:
        raise ProblemError(
            f"problem {problem.name!r} returned rollout details of shapes {wrong}; "
            f"expected ({n},) each"
        )
    if first is not None and set(details) != set(first):
        raise ProblemError(
            f"problem {problem.name!r} returned rollout details {sorted(details)} after "
            f"{sorted(first)}; return the same keys on every call"
        )


def _expected_loss(problem: Problem, optimizer: Optimizer, scope: Scope, wanted: bool) -> float:
    """J(theta) of the optimizer's current law, or NaN where it cannot be recorded."""
    if not wanted or not problem.has_expected_loss:
        return float("nan")
    law = optimizer.gaussian_law()
    if law is None:
        return float("nan")
    means, covariances = scope.moments(law)
    return float(problem.expected_loss(means, covariances))


def frozen_law_floor(problem: Problem, law: GaussianLaw, scope: Scope) -> float:
    """``min_mu J(mu, Sigma)`` over the block means, with ``law``'s covariances held fixed.

    The lowest expected loss a method that adapts only the means of ``law`` can reach. ``J``
    is the problem's closed form, convex in the means on the convex problems, and minimized
    with L-BFGS-B from ``law``'s own means.
    """
    covariances = np.asarray(law.covariances, dtype=np.float64)
    shape = np.shape(law.means)

    def loss(flat_means: FloatArray) -> float:
        means, step_covariances = scope.moments(GaussianLaw(flat_means.reshape(shape), covariances))
        return float(problem.expected_loss(means, step_covariances))

    # Imported here: only the fixed-covariance control needs it, and every job pays for imports.
    from scipy.optimize import minimize

    start = np.asarray(law.means, dtype=np.float64).ravel()
    result = minimize(
        loss, start, method="L-BFGS-B", options={"maxiter": 10_000, "ftol": 1e-15, "gtol": 1e-10}
    )
    return float(min(result.fun, loss(start)))


def optimize(
    problem: Problem,
    optimizer: Optimizer,
    scope: Scope,
    budget: int,
    *,
    record_expected_loss: bool = False,
    start: float | None = None,
) -> pd.DataFrame:
    """Spend ``budget`` evaluations of ``problem`` on ``optimizer`` through ``scope``.

    The last batch is cut to the evaluations left; :meth:`Optimizer.tell` records such a
    prefix without learning from it.

    Args:
        problem: the black box.
        optimizer: a fresh optimizer on ``scope.space``.
        scope: the block-to-noise translation.
        budget: evaluations (rollouts) to spend.
        record_expected_loss: also record J(theta) of the law that proposed each batch.
        start: ``time.perf_counter()`` at the start of the repetition (default: now).
            ``wall_time`` counts from it, less the time spent computing J(theta).

    Returns:
        A frame of ``budget`` rows with columns iteration, evaluation, loss, best_so_far,
        wall_time, expected_loss, safeguard_events, and ``detail_<name>`` for each rollout
        detail of the problem (:meth:`Problem.rollout_details`).
    """
    start = time.perf_counter() if start is None else start
    record = _Record()
    spent = 0
    iteration = 0
    measuring = 0.0  # time spent on J(theta), which is the benchmark's cost, not the method's
    elapsed = 0.0
    while spent < budget:
        candidates = optimizer.ask()
        if candidates.shape[0] == 0:
            raise OptimizerError(f"{optimizer.name} asked for an empty batch")
        before = time.perf_counter()
        expected = _expected_loss(problem, optimizer, scope, record_expected_loss)
        measuring += time.perf_counter() - before
        candidates = candidates[: budget - spent]
        n = candidates.shape[0]
        losses, details = problem.rollout_details(scope.noise(candidates))
        step_losses = np.asarray(losses, dtype=np.float64)
        if step_losses.shape != (n, problem.n_steps):
            raise ProblemError(
                f"problem {problem.name!r} returned step losses of shape {step_losses.shape}; "
                f"expected ({n}, {problem.n_steps})"
            )
        _check_details(problem, details, n, record.details[0] if record.details else None)
        optimizer.tell(candidates, scope.feedback(step_losses))
        # Subtracting the measured intervals could step back by a rounding error.
        elapsed = max(time.perf_counter() - start - measuring, elapsed)
        record.iteration.append(np.full(n, iteration))
        record.loss.append(step_losses.sum(axis=1))
        record.wall_time.append(np.full(n, elapsed))
        record.expected_loss.append(np.full(n, expected))
        record.safeguard_events.append(np.full(n, optimizer.safeguard_events))
        record.details.append(details)
        spent += n
        iteration += 1
    loss = np.concatenate(record.loss)
    return pd.DataFrame(
        {
            "iteration": np.concatenate(record.iteration).astype(np.int64),
            "evaluation": np.arange(1, budget + 1, dtype=np.int64),
            "loss": loss,
            "best_so_far": np.minimum.accumulate(loss),
            "wall_time": np.concatenate(record.wall_time),
            "expected_loss": np.concatenate(record.expected_loss),
            "safeguard_events": np.concatenate(record.safeguard_events).astype(np.int64),
            **record.detail_columns(),
        }
    )


def fresh_sample_loss(
    problem: Problem, optimizer: Optimizer, scope: Scope, n: int, rng: np.random.Generator
) -> float:
    """Mean rollout loss of ``n`` fresh samples of the tuned sampler.

    Per-step scope: ``optimizer.sample_final(n, rng)``. Latent scope: the initial latent
    from ``sample_final``, the later noises fresh N(0, I) from ``rng``.
    """
    losses = problem.loss(scope.fresh_noise(optimizer, n, rng))
    if not np.isfinite(losses).all():
        raise NonFiniteLossError(
            f"{optimizer.name}: a fresh rollout of the tuned sampler returned a non-finite "
            f"loss; the problem must return finite losses"
        )
    return float(np.mean(losses))


def run_repetition(job: Job, seed: int, records: dict[str, Any] | None = None) -> pd.DataFrame:
    """The trace of repetition ``seed`` of ``job``: ``job.budget`` rows, trace columns.

    When ``records`` is given, ``records[str(seed)]`` receives what the trace's provenance
    keeps of the repetition: its four derived seeds, the optimizer's resolved settings
    (:meth:`Optimizer.resolved_settings`, after the run, so pycma's seeds are in), the
    problem's ``optimal_loss`` J* and, for a method with a fixed covariance whose expected
    loss is recorded, ``frozen_law_floor`` (:func:`frozen_law_floor`); None where unknown.
    """
    seeds = RepetitionSeeds.derive(job, seed)
    context = (
        f"{job.method} on {job.problem} (d={job.dim}, K={job.n_steps}, {job.scoring}), seed {seed}"
    )
    try:
        problem = problems.make_problem(
            job.problem,
            job.dim,
            job.n_steps,
            job.scoring,
            seed=seeds.instance,
            **_problem_options(job),
        )
        optimizer_class = optimizers.get_optimizer(job.optimizer)
        scope = make_scope(
            optimizer_class.scope, job.n_steps, job.dim, seeds.crn, problem.initial_scale
        )
        start = time.perf_counter()
        optimizer = optimizers.make_optimizer(
            job.optimizer,
            scope.space,
            seed=seeds.optimizer,
            **_optimizer_options(optimizer_class, job),
        )
        floor = None
        if records is not None and optimizer.fixed_covariance and job.record_expected_loss:
            law = optimizer.gaussian_law()
            if law is not None and problem.has_expected_loss:
                floor = frozen_law_floor(problem, law, scope)
        steps = optimize(
            problem,
            optimizer,
            scope,
            job.budget,
            record_expected_loss=job.record_expected_loss,
            start=start,
        )
        fresh = fresh_sample_loss(
            problem, optimizer, scope, job.fresh_samples, np.random.default_rng(seeds.fresh)
        )
    except NonFiniteLossError as error:
        raise NonFiniteLossError(f"{context}: {error}") from error
    run: dict[str, Any] = {
        "method": job.method,
        "optimizer": job.optimizer,
        "problem": job.problem,
        "d": job.dim,
        "K": job.n_steps,
        "scoring": job.scoring,
        "seed": seed,
        "budget": job.budget,
    }
    frame = steps.assign(**run, fresh_sample_loss=fresh)
    if records is not None:
        records[str(seed)] = {
            "seeds": asdict(seeds),
            "settings": optimizer.resolved_settings(),
            "optimal_loss": problem.optimal_loss if np.isfinite(problem.optimal_loss) else None,
            "frozen_law_floor": floor,
        }
    logger.info(
        "%s: best-so-far %.6g after %d evaluations, fresh-sample %.6g, %.2f s",
        context,
        frame["best_so_far"].iloc[-1],
        job.budget,
        fresh,
        frame["wall_time"].iloc[-1],
    )
    return frame


def _as_trace(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with the trace columns in order and their dtypes, then any detail columns."""
    details = [column for column in frame.columns if column.startswith(DETAIL_PREFIX)]
    return frame[[*TRACE_COLUMNS, *details]].astype(TRACE_COLUMNS)


def run_job(job: Job, records: dict[str, Any] | None = None) -> pd.DataFrame:
    """Run every repetition seed of ``job``; the trace, one row per evaluation.

    ``records``, when given, receives one entry per seed (:func:`run_repetition`).

    Raises:
        OptimizerError: unknown optimizer (the message lists the valid names) or option.
        ProblemError: unknown problem (the message lists the valid names) or size.
        NonFiniteLossError: the black box returned NaN or infinity; the message names the
            method, problem, d, K, scoring and seed.
    """
    return _as_trace(
        pd.concat([run_repetition(job, seed, records) for seed in job.seeds], ignore_index=True)
    )
