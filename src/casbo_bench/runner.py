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

Failures. A rollout whose loss is NaN or infinite, or whose evaluation raises, is a *failed
evaluation* (:func:`evaluate`): it counts against the budget, its trace row has ``failed``
true, the reason in ``error`` and a NaN ``loss``, and it never enters best-so-far or the
fresh-sample measure. Under the job's ``on_failure="penalty"`` the optimizer is told a
penalty in its place (:func:`penalized`, the one penalty rule); under ``"stop"`` the job ends
with :class:`EvaluationFailedError`. A repetition that fails itself (its optimizer raises,
or none of its evaluations succeeds) keeps the rows it finished with ``status`` failed, and
the job goes on with its next seed (:func:`run_repetition`).
"""

from __future__ import annotations

import inspect
import logging
import math
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from casbo_bench import optimizers, problems
from casbo_bench.errors import UserFacingError, describe_error
from casbo_bench.names import DEFAULT_FAILURE_PENALTY, DEVICE_NAMES, FAILURE_POLICIES, SCORINGS
from casbo_bench.optimizers.base import (
    FloatArray,
    GaussianLaw,
    Optimizer,
    OptimizerError,
    SearchSpace,
)
from casbo_bench.optimizers.steering import SteeringMethod, StepwiseProblem, Sweep
from casbo_bench.problems.base import Problem, ProblemError, RolloutDetails
from casbo_bench.schemas.trace_columns import (
    COMPLETE,
    COST_COLUMNS,
    DETAIL_PREFIX,
    FAILED,
    TRACE_COLUMNS,
)
from casbo_bench.seeding import derive_seed

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)


class JobError(UserFacingError, ValueError):
    """A job was asked for with an impossible size, budget, seed list or option."""


class EvaluationFailedError(UserFacingError, RuntimeError):
    """An evaluation failed under ``on_failure="stop"``; the message names the run, the
    evaluation and its reason."""


class JobFailedError(UserFacingError, RuntimeError):
    """Every repetition of a job failed before its first evaluation, so there is no trace."""


STOP_FIX = "set on_failure: penalty (--on-failure penalty) to record it and go on"
"""The fix named by :class:`EvaluationFailedError`."""


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
        on_failure: what a failed evaluation does: ``"penalty"`` records it and tells the
            optimizer a penalty (:func:`penalized`), ``"stop"`` ends the job with
            :class:`EvaluationFailedError`.
        failure_penalty: the loss told for a failed evaluation before any evaluation of the
            repetition succeeded (afterwards the worst finite loss so far is told).
        coco_folder: for problems that record their runs in COCO's data format (bbob), the
            folder COCO's observer writes every seed's search into (None: no COCO data).
        denoiser_budget: for problems with a pre-trained sampler (molecule tasks), the
            denoiser evaluations every run spends too (:func:`evaluation_budget`); ``budget``
            is then the black-box call budget. None: the call budget alone.
        checkpoint_sha256: for problems with a pre-trained sampler, the sha256 of the
            checkpoint the job was planned for; the problem refuses another. None: any.
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
    on_failure: str = "penalty"
    failure_penalty: float = DEFAULT_FAILURE_PENALTY
    coco_folder: str | None = None
    denoiser_budget: int | None = None
    checkpoint_sha256: str | None = None

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
        if self.on_failure not in FAILURE_POLICIES:
            raise JobError(
                f"on_failure must be one of {', '.join(FAILURE_POLICIES)}; got {self.on_failure!r}"
            )
        penalty = self.failure_penalty
        if (
            isinstance(penalty, bool)
            or not isinstance(penalty, int | float | np.integer | np.floating)
            or not math.isfinite(penalty)
        ):
            raise JobError(f"failure_penalty must be a finite number; got {penalty!r}")
        object.__setattr__(self, "failure_penalty", float(penalty))
        budget = self.denoiser_budget
        if budget is not None and (
            isinstance(budget, bool) or not isinstance(budget, int | np.integer) or budget < 1
        ):
            raise JobError(f"denoiser_budget must be an integer >= 1 or left out; got {budget!r}")
        digest = self.checkpoint_sha256
        if digest is not None and not re.fullmatch(r"[0-9a-f]{64}", str(digest)):
            raise JobError(
                f"checkpoint_sha256 must be 64 lower-case hex digits (a sha256); got {digest!r}"
            )
        if self.coco_folder is not None:
            if not str(self.coco_folder):
                raise JobError("coco_folder must name a folder (or be left out for no COCO data)")
            object.__setattr__(self, "coco_folder", str(self.coco_folder))

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
            "on_failure": self.on_failure,
            "failure_penalty": self.failure_penalty,
            "coco_folder": self.coco_folder,
            "denoiser_budget": self.denoiser_budget,
            "checkpoint_sha256": self.checkpoint_sha256,
        }

    def describe(self) -> str:
        """``"<method> on <problem> (d=<d>, K=<K>, <scoring>)"``: how messages name the job."""
        return f"{self.method} on {self.problem} (d={self.dim}, K={self.n_steps}, {self.scoring})"


@dataclass(frozen=True)
class RepetitionSeeds:
    """The four seed streams of one repetition (see ``docs/architecture.md``).

    Attributes:
        instance: the problem instance, shared by all methods: the repetition seed itself for
            a family that numbers its own instances (bbob: COCO instance ``seed + 1``),
            else derived.
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
        own = problems.own_instances(job.problem)
        return cls(
            instance=int(seed) if own else derive_seed("instance", *axes),
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


def accepted_options(optimizer_class: type[Optimizer] | type[SteeringMethod]) -> list[str]:
    """The keyword options the constructor of ``optimizer_class`` accepts.

    An ``__init__`` that forwards ``**options`` to its parent accepts the parent's options
    too, so the walk goes up the class hierarchy until an ``__init__`` without
    ``**options``, or the :class:`Optimizer` base (whose ``**options`` rejects any).
    """
    keyword = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    names: list[str] = []
    own = ("self", "space", "seed")
    for cls in optimizer_class.__mro__:
        if cls is Optimizer or cls is SteeringMethod:
            break
        if "__init__" not in vars(cls):
            continue
        parameters = inspect.signature(vars(cls)["__init__"]).parameters
        names += [
            name
            for name, parameter in parameters.items()
            if parameter.kind in keyword and name not in own
        ]
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
            break
    return list(dict.fromkeys(names))


def _problem_options(job: Job) -> dict[str, Any]:
    """``device``, ``models_dir`` and ``checkpoint_sha256`` for problem families whose builder
    takes them (the molecule tasks: where the sampler runs, where its models are, which
    checkpoint the job was planned for); ``coco_folder`` and ``coco_algorithm`` (the method
    label) for those that write COCO data (bbob).

    Raises:
        ProblemError: a ``models_dir`` or ``checkpoint_sha256`` for a problem that reads no
            models, or a ``coco_folder`` for one that writes no COCO data.
    """
    for family in problems.FAMILIES.values():
        if job.problem in family.names():
            takes = inspect.signature(family.build).parameters
            if job.models_dir is not None and "models_dir" not in takes:
                raise ProblemError(
                    f"{job.problem} reads no stored models; leave out the models folder "
                    f"(--models-dir)"
                )
            if job.checkpoint_sha256 is not None and "checkpoint_sha256" not in takes:
                raise ProblemError(
                    f"{job.problem} reads no stored checkpoint; leave out --checkpoint-sha256"
                )
            if job.coco_folder is not None and "coco_folder" not in takes:
                raise ProblemError(
                    f"{job.problem} writes no COCO data (only the bbob problems do); leave out "
                    f"the COCO folder (--coco-folder)"
                )
            given = {
                "device": job.device,
                "models_dir": job.models_dir,
                "coco_folder": job.coco_folder,
                "coco_algorithm": None if job.coco_folder is None else job.method,
                "checkpoint_sha256": job.checkpoint_sha256,
            }
            return {n: v for n, v in given.items() if n in takes and v is not None}
    return {}


def _optimizer_options(
    optimizer_class: type[Optimizer] | type[SteeringMethod], job: Job
) -> dict[str, Any]:
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


def _is_failure(error: Exception) -> bool:
    """Whether ``error``, raised while the black box evaluated, is a failed evaluation.

    Every exception is, except a MemoryError or a device's OutOfMemoryError (the machine's
    limit, not the candidate's) and
    the package's own user errors (:class:`UserFacingError`: a broken problem contract or a
    configuration mistake, which every further evaluation would repeat). KeyboardInterrupt
    and SystemExit are no ``Exception`` and are never caught.
    """
    if isinstance(error, MemoryError | UserFacingError):
        return False
    # A device out of memory is the machine's limit too (torch's error is no MemoryError).
    return type(error).__name__ != "OutOfMemoryError"


def _fails_repetition(error: Exception) -> bool:
    """Whether ``error``, raised while a repetition spends its budget or measures its fresh
    samples, fails that repetition alone: a failure (:func:`_is_failure`) or the optimizer's
    own error (:class:`OptimizerError`)."""
    return isinstance(error, OptimizerError) or _is_failure(error)


@dataclass(frozen=True)
class Evaluations:
    """The outcome of a batch of ``n`` rollouts (:func:`evaluate`).

    Attributes:
        step_losses: the ``n x K`` step losses; a failed rollout's row holds what the
            problem returned (not finite), or NaN where its evaluation raised.
        errors: ``n`` one-line reasons, ``""`` where the rollout succeeded: ``"loss is
            nan"``, ``"loss is -inf"``, or the exception as ``"ValueError: ..."``.
        details: the problem's rollout details (``n`` entries each), None in the entries of
            rollouts that raised; None when every rollout raised (no keys are known).
    """

    step_losses: FloatArray
    errors: tuple[str, ...]
    details: RolloutDetails | None

    @property
    def failed(self) -> NDArray[np.bool_]:
        """``n`` booleans: which rollouts failed."""
        return np.array([bool(error) for error in self.errors], dtype=bool)

    @property
    def losses(self) -> FloatArray:
        """The ``n`` rollout losses ``sum_k s_k``, NaN where the rollout failed."""
        with np.errstate(over="ignore", invalid="ignore"):
            return np.where(self.failed, np.nan, self.step_losses.sum(axis=1))


def evaluate(problem: Problem, noise: FloatArray) -> Evaluations:
    """Evaluate ``n x K x d`` noises; a NaN, infinite or raising rollout is a failed evaluation.

    When the batch raises, its rollouts are evaluated again one at a time (a problem is
    deterministic given its noise), so only the rollouts that fail are lost.

    Raises:
        ProblemError: step losses or details of the wrong shape (the problem's contract).
        Exception: any exception that is no failure (:func:`_is_failure`), as raised.
    """
    n = noise.shape[0]
    try:
        losses, details = problem.rollout_details(noise)
    except Exception as error:
        if not _is_failure(error):
            raise
        if n == 1:
            failed = np.full((1, problem.n_steps), np.nan)
            return Evaluations(failed, (describe_error(error),), None)
        return _one_at_a_time(problem, [evaluate(problem, noise[i : i + 1]) for i in range(n)])
    step_losses = np.asarray(losses, dtype=np.float64)
    if step_losses.shape != (n, problem.n_steps):
        raise ProblemError(
            f"problem {problem.name!r} returned step losses of shape {step_losses.shape}; "
            f"expected ({n}, {problem.n_steps})"
        )
    _check_details(problem, details, n, None)
    with np.errstate(over="ignore", invalid="ignore"):
        totals = step_losses.sum(axis=1)
    errors = tuple("" if np.isfinite(total) else f"loss is {total}" for total in totals)
    return Evaluations(step_losses, errors, details)


def _one_at_a_time(problem: Problem, singles: Sequence[Evaluations]) -> Evaluations:
    """One batch's evaluations from those of its rollouts evaluated one by one."""
    known = [single.details for single in singles if single.details is not None]
    for other in known[1:]:
        _check_details(problem, other, 1, known[0])
    details: RolloutDetails | None = None
    if known:
        details = {}
        for name in known[0]:
            column = np.empty(len(singles), dtype=object)
            for index, single in enumerate(singles):
                column[index] = None if single.details is None else single.details[name][0]
            details[name] = column
    return Evaluations(
        np.concatenate([single.step_losses for single in singles]),
        tuple(error for single in singles for error in single.errors),
        details,
    )


def penalized(
    step_losses: FloatArray,
    failed: NDArray[np.bool_],
    worst: FloatArray | None,
    fallback: float,
) -> tuple[FloatArray, FloatArray | None]:
    """The step losses told to the optimizer for a batch, and the worst step losses so far.

    The penalty rule. A failed rollout is told, in each of the K steps, the worst (largest)
    step loss that a successful rollout of the repetition reached there so far, the current
    batch included: with ``s_{r,k}`` the step losses of the successful rollouts ``r``, it is
    told ``w_k = max_r s_{r,k}``. So in no block does a failed rollout look better than a
    successful one (a per-step method ranks each block on its own), and its rollout loss
    ``sum_k w_k`` is at least the worst finite loss ``max_r sum_k s_{r,k}``, equal to it for
    K = 1 and wherever one rollout is the worst in every step. Before any rollout succeeded,
    each of the K steps is told ``fallback / K``, a rollout loss of ``fallback`` (the job's
    ``failure_penalty``). A successful rollout is told its own step losses.

    Args:
        step_losses: the batch's ``n x K`` step losses (any values in the failed rows).
        failed: ``n`` booleans, the failed rollouts.
        worst: ``w``, the ``K`` worst step losses of the earlier batches' successful
            rollouts, or None when none succeeded.
        fallback: the penalty before any success.

    Returns:
        ``(told, worst)``: the ``n x K`` step losses to tell, and ``w`` over the successful
        rollouts so far, this batch included (None while none).
    """
    succeeded = step_losses[~failed]
    if len(succeeded):
        batch_worst = succeeded.max(axis=0)
        worst = batch_worst if worst is None else np.maximum(worst, batch_worst)
    n_steps = step_losses.shape[1]
    filler = np.full(n_steps, fallback / n_steps) if worst is None else worst
    return np.where(failed[:, None], filler, step_losses), worst


def _refuse_failure(evaluations: Evaluations, name: str, first: int) -> None:
    """Under ``on_failure="stop"``: raise :class:`EvaluationFailedError` for the first failed
    rollout of ``evaluations``, called ``name.format(first + its index)``."""
    failed = np.flatnonzero(evaluations.failed)
    if failed.size:
        index = int(failed[0])
        raise EvaluationFailedError(
            f"{name.format(first + index)} failed ({evaluations.errors[index]}); {STOP_FIX}"
        )


def _joined(parts: Sequence[NDArray[Any]], dtype: Any) -> NDArray[Any]:
    return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)


@dataclass
class _Record:
    """Per-evaluation columns of one repetition, filled batch by batch."""

    iteration: list[NDArray[np.int64]] = field(default_factory=list)
    loss: list[FloatArray] = field(default_factory=list)
    failed: list[NDArray[np.bool_]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    wall_time: list[FloatArray] = field(default_factory=list)
    expected_loss: list[FloatArray] = field(default_factory=list)
    safeguard_events: list[NDArray[np.int64]] = field(default_factory=list)
    details: list[RolloutDetails | None] = field(default_factory=list)
    costs: list[NDArray[np.int64]] = field(default_factory=list)

    @property
    def spent(self) -> int:
        """Evaluations recorded so far."""
        return len(self.errors)

    @property
    def first_details(self) -> RolloutDetails | None:
        """The details of the first batch that returned any (their keys are the columns)."""
        return next((details for details in self.details if details is not None), None)

    def add(
        self,
        evaluations: Evaluations,
        elapsed: float,
        expected: float,
        safeguard_events: int,
        costs: NDArray[np.int64] | None = None,
    ) -> None:
        """Record one evaluated batch as iteration ``len(self.loss)``; ``costs``, a ``n x 2``
        array, the cumulative black-box calls and denoiser evaluations at each row (problems
        with a pre-trained sampler only)."""
        n = len(evaluations.errors)
        if costs is not None:
            self.costs.append(np.asarray(costs, dtype=np.int64).reshape(n, 2))
        self.iteration.append(np.full(n, len(self.loss), dtype=np.int64))
        self.loss.append(evaluations.losses)
        self.failed.append(evaluations.failed)
        self.errors += evaluations.errors
        self.wall_time.append(np.full(n, elapsed))
        self.expected_loss.append(np.full(n, expected))
        self.safeguard_events.append(np.full(n, safeguard_events, dtype=np.int64))
        self.details.append(evaluations.details)

    def detail_columns(self) -> dict[str, Any]:
        """The problem's rollout details as trace columns ``detail_<name>``, one per row
        (None in the rows of rollouts that raised)."""
        first = self.first_details
        if not first:
            return {}
        return {
            f"{DETAIL_PREFIX}{name}": np.concatenate(
                [
                    np.full(len(losses), None, dtype=object) if batch is None else batch[name]
                    for batch, losses in zip(self.details, self.loss, strict=True)
                ]
            )
            for name in first
        }

    def frame(self) -> pd.DataFrame:
        """The recorded rows (:func:`optimize`'s columns); none before the first batch."""
        import pandas as pd  # a job imports pandas only once it has run (start-up)

        loss = _joined(self.loss, np.float64)
        failed = _joined(self.failed, bool)
        return pd.DataFrame(
            {
                "iteration": _joined(self.iteration, np.int64),
                "evaluation": np.arange(1, loss.size + 1, dtype=np.int64),
                "loss": loss,
                "best_so_far": np.minimum.accumulate(np.where(failed, np.inf, loss)),
                "wall_time": _joined(self.wall_time, np.float64),
                "expected_loss": _joined(self.expected_loss, np.float64),
                "safeguard_events": _joined(self.safeguard_events, np.int64),
                "failed": failed,
                "error": pd.Series(self.errors, dtype="str"),
                **self.cost_columns(),
                **self.detail_columns(),
            }
        )

    def cost_columns(self) -> dict[str, NDArray[np.int64]]:
        """``calls`` and ``denoiser_evals`` (:data:`COST_COLUMNS`), where costs were recorded."""
        if not self.costs:
            return {}
        costs = np.concatenate(self.costs)
        return {name: costs[:, i] for i, name in enumerate(COST_COLUMNS)}


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
    on_failure: str = "penalty",
    failure_penalty: float = DEFAULT_FAILURE_PENALTY,
) -> pd.DataFrame:
    """Spend ``budget`` evaluations of ``problem`` on ``optimizer`` through ``scope``.

    The last batch is cut to the evaluations left; :meth:`Optimizer.tell` records such a
    prefix without learning from it. A failed evaluation (:func:`evaluate`) counts against
    the budget; the optimizer is told :func:`penalized` losses in its place.

    Args:
        problem: the black box.
        optimizer: a fresh optimizer on ``scope.space``.
        scope: the block-to-noise translation.
        budget: evaluations (rollouts) to spend.
        record_expected_loss: also record J(theta) of the law that proposed each batch.
        start: ``time.perf_counter()`` at the start of the repetition (default: now).
            ``wall_time`` counts from it, less the time spent computing J(theta).
        on_failure: ``"penalty"`` or ``"stop"`` (:class:`Job`).
        failure_penalty: the penalty before the first successful evaluation.

    Returns:
        A frame of ``budget`` rows with columns iteration, evaluation, loss (NaN where the
        evaluation failed), best_so_far (over the evaluations that did not fail; inf before
        the first), wall_time, expected_loss, safeguard_events, failed, error, and
        ``detail_<name>`` for each rollout detail of the problem
        (:meth:`Problem.rollout_details`).

    Raises:
        EvaluationFailedError: an evaluation failed and ``on_failure`` is ``"stop"``.
    """
    record = _Record()
    _spend(
        record,
        problem,
        optimizer,
        scope,
        budget,
        record_expected_loss=record_expected_loss,
        start=time.perf_counter() if start is None else start,
        on_failure=on_failure,
        failure_penalty=failure_penalty,
    )
    return record.frame()


def _spend(
    record: _Record,
    problem: Problem,
    optimizer: Optimizer,
    scope: Scope,
    budget: int,
    *,
    record_expected_loss: bool,
    start: float,
    on_failure: str,
    failure_penalty: float,
) -> None:
    """:func:`optimize` into ``record``, which keeps every evaluated batch when it raises."""
    measuring = 0.0  # time spent on J(theta), which is the benchmark's cost, not the method's
    elapsed = 0.0
    worst: FloatArray | None = None
    passes = problem.forward_passes_per_rollout
    while record.spent < budget:
        candidates = optimizer.ask()
        if candidates.shape[0] == 0:
            raise OptimizerError(f"{optimizer.name} asked for an empty batch")
        before = time.perf_counter()
        expected = _expected_loss(problem, optimizer, scope, record_expected_loss)
        measuring += time.perf_counter() - before
        candidates = candidates[: budget - record.spent]
        evaluations = evaluate(problem, scope.noise(candidates))
        if evaluations.details is not None:
            _check_details(problem, evaluations.details, len(candidates), record.first_details)
        if on_failure == "stop":
            _refuse_failure(evaluations, "evaluation {}", record.spent + 1)
        told, worst = penalized(evaluations.step_losses, evaluations.failed, worst, failure_penalty)
        try:
            optimizer.tell(candidates, scope.feedback(told))
        finally:
            # Subtracting the measured intervals could step back by a rounding error.
            elapsed = max(time.perf_counter() - start - measuring, elapsed)
            record.add(
                evaluations,
                elapsed,
                expected,
                optimizer.safeguard_events,
                None if passes is None else _rollout_costs(record.spent, len(candidates), passes),
            )


def _rollout_costs(spent: int, n: int, passes: int) -> NDArray[np.int64]:
    """Cumulative ``(calls, denoiser evaluations)`` of rollouts ``spent + 1 .. spent + n``:
    a rollout is one call and ``passes`` evaluations."""
    calls = np.arange(spent + 1, spent + n + 1, dtype=np.int64)
    return np.stack([calls, calls * passes], axis=1)


def evaluation_budget(job: Job, problem: Problem) -> int:
    """The rollouts an ask/tell run spends: ``max(budget, ceil(denoiser_budget / F))`` with
    F the problem's denoiser evaluations per rollout, so that it spends both budgets (a
    rollout is one black-box call); ``budget`` where either is unknown."""
    passes = problem.forward_passes_per_rollout
    if passes is None or job.denoiser_budget is None:
        return job.budget
    return max(job.budget, -(-job.denoiser_budget // passes))


def _sweep_evaluations(problem: Problem, sweep: Sweep) -> Evaluations:
    """A sweep's completed samples as evaluations (a non-finite loss is a failed one)."""
    step_losses = np.asarray(sweep.step_losses, dtype=np.float64)
    if step_losses.shape != (len(sweep.weights), problem.n_steps):
        raise ProblemError(
            f"problem {problem.name!r} finished {step_losses.shape} step losses for "
            f"{len(sweep.weights)} chains; expected ({len(sweep.weights)}, {problem.n_steps})"
        )
    _check_details(problem, sweep.details, len(step_losses), None)
    with np.errstate(over="ignore", invalid="ignore"):
        totals = step_losses.sum(axis=1)
    errors = tuple("" if np.isfinite(total) else f"loss is {total}" for total in totals)
    return Evaluations(step_losses, errors, sweep.details)


def _steering_cost(problem: Problem) -> tuple[int, int]:
    cost = problem.cost  # type: ignore[attr-defined]
    return int(cost.calls), int(cost.denoiser_evals)


def steer(
    record: _Record,
    problem: Problem,
    method: SteeringMethod,
    call_budget: int,
    denoiser_budget: int,
    start: float,
) -> None:
    """Run sweeps of ``method`` on ``problem`` into ``record`` until the problem has spent
    ``call_budget`` black-box calls and ``denoiser_budget`` denoiser evaluations.

    Every completed sample is one row; the rows of a sweep carry the cumulative costs at the
    sweep's end (they complete together), the intermediate ``x0_hat`` scores included.
    """
    if not isinstance(problem, StepwiseProblem):
        raise JobError(
            f"{method.name} steers a sampler one step at a time; {problem.name} has no "
            f"stepwise sampler (only the molecule tasks have one)"
        )
    while True:
        calls, evals = _steering_cost(problem)
        if calls >= call_budget and evals >= denoiser_budget:
            return
        sweep = method.sweep(problem)
        evaluations = _sweep_evaluations(problem, sweep)
        n = len(evaluations.errors)
        costs = np.tile(np.array(_steering_cost(problem), dtype=np.int64), (n, 1))
        record.add(evaluations, time.perf_counter() - start, math.nan, 0, costs)


def measure_fresh_steering(problem: Problem, method: SteeringMethod, n: int) -> FreshSamples:
    """The fresh-sample loss of a steering method: fresh sweeps of ``method`` (built from
    the fresh seed) until ``n`` samples, each sweep's loss the mean of its completed samples'
    losses under its output weights, averaged over the sweeps. A failed sample is left out
    of its sweep's mean (the other weights renormalized) and counted."""
    losses: list[float] = []
    failed = drawn = 0
    while drawn < n:
        sweep = method.sweep(problem)  # type: ignore[arg-type]
        evaluations = _sweep_evaluations(problem, sweep)
        ok = ~evaluations.failed
        drawn += len(ok)
        failed += int((~ok).sum())
        if ok.any():
            weights = np.asarray(sweep.weights)[ok]
            total = weights.sum()
            weights = weights / total if total > 0 else np.full(ok.sum(), 1 / ok.sum())
            losses.append(float(np.dot(weights, evaluations.losses[ok])))
    return FreshSamples(float(np.mean(losses)) if losses else math.nan, failed)


@dataclass(frozen=True)
class FreshSamples:
    """The fresh-sample measure of a tuned sampler (:func:`measure_fresh`).

    Attributes:
        loss: the mean rollout loss of the fresh rollouts that succeeded; NaN when none did.
        failed: how many fresh rollouts failed (left out of the mean).
    """

    loss: float
    failed: int


def measure_fresh(
    problem: Problem,
    optimizer: Optimizer,
    scope: Scope,
    n: int,
    rng: np.random.Generator,
    on_failure: str = "penalty",
) -> FreshSamples:
    """The mean rollout loss of ``n`` fresh samples of the tuned sampler.

    Per-step scope: ``optimizer.sample_final(n, rng)``. Latent scope: the initial latent
    from ``sample_final``, the later noises fresh N(0, I) from ``rng``. A fresh rollout that
    fails (:func:`evaluate`) is left out of the mean and counted.

    Raises:
        EvaluationFailedError: a fresh rollout failed and ``on_failure`` is ``"stop"``.
    """
    evaluations = evaluate(problem, scope.fresh_noise(optimizer, n, rng))
    if on_failure == "stop":
        _refuse_failure(evaluations, f"fresh rollout {{}} of {n}", 1)
    failed = evaluations.failed
    losses = evaluations.losses[~failed]
    return FreshSamples(float(np.mean(losses)) if losses.size else math.nan, int(failed.sum()))


def fresh_sample_loss(
    problem: Problem, optimizer: Optimizer, scope: Scope, n: int, rng: np.random.Generator
) -> float:
    """The loss of :func:`measure_fresh` alone."""
    return measure_fresh(problem, optimizer, scope, n, rng).loss


def _make_problem(job: Job, seeds: RepetitionSeeds) -> Problem:
    return problems.make_problem(
        job.problem,
        job.dim,
        job.n_steps,
        job.scoring,
        seed=seeds.instance,
        **_problem_options(job),
    )


def _build(job: Job, seeds: RepetitionSeeds) -> tuple[Problem, Optimizer, Scope, float]:
    """The problem instance, the optimizer, its scope and ``time.perf_counter()`` when the
    optimizer started (its construction is the method's cost)."""
    problem = _make_problem(job, seeds)
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
    return problem, optimizer, scope, start


def _build_steering(job: Job, seed: int) -> SteeringMethod:
    """Steering method ``job.optimizer`` from ``seed`` with the job's options."""
    method_class = optimizers.get_steering(job.optimizer)
    return method_class(seed, **_optimizer_options(method_class, job))


def _steering_repetition(
    job: Job, seeds: RepetitionSeeds, record: _Record, entry: dict[str, Any], provenance: bool
) -> tuple[FreshSamples, str | None]:
    """Spend both budgets of a steering job's repetition into ``record``; its fresh
    samples and failure (None when it completed). ``entry`` gets the method's settings."""
    fresh = FreshSamples(math.nan, 0)
    try:
        problem = _make_problem(job, seeds)
        method = _build_steering(job, seeds.optimizer)
    except Exception as error:
        if not _is_failure(error):
            raise
        logger.info("%s: building the repetition failed", job.describe(), exc_info=True)
        return fresh, describe_error(error)
    entry["problem_instance"] = problem.instance_record() or None
    failure: str | None = None
    try:
        try:
            steer(
                record,
                problem,
                method,
                job.budget,
                job.denoiser_budget or 0,
                time.perf_counter(),
            )
        finally:
            problem.end_search()
        if all(record.errors):
            failure = f"none of its {record.spent} evaluations succeeded ({record.errors[0]})"
        else:
            fresh = measure_fresh_steering(
                problem, _build_steering(job, seeds.fresh), job.fresh_samples
            )
    except Exception as error:
        if not _fails_repetition(error):
            raise
        failure = describe_error(error)
        logger.info("%s: the repetition's error, with its traceback", job.describe(), exc_info=True)
    if provenance:
        entry["settings"] = method.resolved_settings()
    return fresh, failure


def run_repetition(job: Job, seed: int, records: dict[str, Any] | None = None) -> pd.DataFrame:
    """The trace rows of repetition ``seed`` of ``job``.

    A complete repetition has ``job.budget`` rows with ``status`` complete. A repetition
    that fails keeps the rows it finished, with ``status`` failed and a NaN fresh-sample
    loss, possibly none; the failure is logged and recorded, and the caller goes on. It
    fails when something other than a user error (:class:`UserFacingError`) or a
    MemoryError is raised while its problem and optimizer are built, when its optimizer
    raises (:class:`OptimizerError` included) or anything unexpected happens while it
    runs, and when none of its evaluations succeeds (no fresh samples are drawn then).

    When ``records`` is given, ``records[str(seed)]`` receives what the trace's provenance
    keeps of the repetition: its four derived seeds, the optimizer's resolved settings
    (:meth:`Optimizer.resolved_settings`, after the run, so pycma's seeds are in; None when
    no optimizer was built), the problem's ``optimal_loss`` J* and, for a method with a
    fixed covariance whose expected loss is recorded, ``frozen_law_floor``
    (:func:`frozen_law_floor`), None where unknown; ``problem_instance``, what identifies the
    instance beyond its seed (:meth:`Problem.instance_record`; bbob: COCO's instance and
    f_opt), None when no problem was built; ``status`` (complete or failed),
    ``error`` (the one-line reason of a failed repetition, else None),
    ``failed_evaluations`` and ``failed_fresh_samples`` (the counts of failed rollouts).

    Raises:
        EvaluationFailedError: an evaluation failed under ``on_failure="stop"``; the message
            names the method, problem, d, K, scoring and seed.
        UserFacingError: a configuration mistake while building the problem or the
            optimizer (an unknown option, an impossible size), or a broken problem contract
            (:class:`ProblemError`).
    """
    steps, entry = _repetition(job, seed, provenance=records is not None)
    if records is not None:
        records[str(seed)] = entry
    return steps


def _repetition(job: Job, seed: int, provenance: bool) -> tuple[pd.DataFrame, dict[str, Any]]:
    """:func:`run_repetition`'s rows and its record (without the optimizer's settings and
    the frozen-law floor unless ``provenance``)."""
    seeds = RepetitionSeeds.derive(job, seed)
    context = f"{job.describe()}, seed {seed}"
    entry: dict[str, Any] = {"seeds": asdict(seeds), "settings": None}
    entry.update(optimal_loss=None, frozen_law_floor=None, problem_instance=None)
    record = _Record()
    fresh = FreshSamples(math.nan, 0)
    failure: str | None = None
    budget = job.budget
    if optimizers.is_steering(job.optimizer):
        fresh, failure = _steering_repetition(job, seeds, record, entry, provenance)
        budget = max(record.spent, 1)
        return _finish_repetition(job, seed, context, record, entry, fresh, failure, budget)
    try:
        problem, optimizer, scope, start = _build(job, seeds)
    except Exception as error:
        if not _is_failure(error):
            raise
        failure = describe_error(error)
        logger.info("%s: building the repetition failed", job.describe(), exc_info=True)
    else:
        if np.isfinite(problem.optimal_loss):
            entry["optimal_loss"] = problem.optimal_loss
        entry["problem_instance"] = problem.instance_record() or None
        budget = evaluation_budget(job, problem)
        try:
            if provenance and optimizer.fixed_covariance and job.record_expected_loss:
                law = optimizer.gaussian_law()
                if law is not None and problem.has_expected_loss:
                    entry["frozen_law_floor"] = frozen_law_floor(problem, law, scope)
            try:
                _spend(
                    record,
                    problem,
                    optimizer,
                    scope,
                    budget,
                    record_expected_loss=job.record_expected_loss,
                    start=start,
                    on_failure=job.on_failure,
                    failure_penalty=job.failure_penalty,
                )
            finally:
                problem.end_search()
            if all(record.errors):
                failure = f"none of its {record.spent} evaluations succeeded ({record.errors[0]})"
            else:
                fresh = measure_fresh(
                    problem,
                    optimizer,
                    scope,
                    job.fresh_samples,
                    np.random.default_rng(seeds.fresh),
                    job.on_failure,
                )
        except EvaluationFailedError as error:
            raise EvaluationFailedError(f"{context}: {error}") from error
        except Exception as error:
            if not _fails_repetition(error):
                raise
            failure = describe_error(error)
            # The traceback goes to the job's log: an optimizer's error may be a bug.
            logger.info("%s: the repetition's error, with its traceback", context, exc_info=True)
        if provenance:
            entry["settings"] = optimizer.resolved_settings()
    return _finish_repetition(job, seed, context, record, entry, fresh, failure, budget)


def _finish_repetition(
    job: Job,
    seed: int,
    context: str,
    record: _Record,
    entry: dict[str, Any],
    fresh: FreshSamples,
    failure: str | None,
    budget: int,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A repetition's trace rows and record, from what it spent (``budget``: the
    evaluations a complete run of it has)."""
    steps = record.frame()
    entry.update(
        status=COMPLETE if failure is None else FAILED,
        error=failure,
        failed_evaluations=int(steps["failed"].sum()),
        failed_fresh_samples=fresh.failed,
    )
    _report(context, steps, failure, fresh)
    run: dict[str, Any] = {
        "method": job.method,
        "optimizer": job.optimizer,
        "problem": job.problem,
        "d": job.dim,
        "K": job.n_steps,
        "scoring": job.scoring,
        "seed": seed,
        "budget": budget,
    }
    return steps.assign(**run, fresh_sample_loss=fresh.loss, status=entry["status"]), entry


def _report(context: str, steps: pd.DataFrame, failure: str | None, fresh: FreshSamples) -> None:
    """Log a repetition's outcome: one line, and one more when rollouts failed."""
    if failure is not None:
        kept = "its rows are kept with status failed" if len(steps) else "it has no rows"
        logger.warning(
            "%s: the repetition failed after %d evaluation(s): %s; %s and the job goes on",
            context,
            len(steps),
            failure,
            kept,
        )
    else:
        logger.info(
            "%s: best-so-far %.6g after %d evaluations, fresh-sample %.6g, %.2f s",
            context,
            steps["best_so_far"].iloc[-1],
            len(steps),
            fresh.loss,
            steps["wall_time"].iloc[-1],
        )
    failed = steps["failed"].to_numpy()
    if failed.any() or fresh.failed:
        first = int(np.argmax(failed))
        example = f" (first: evaluation {first + 1}, {steps['error'].iloc[first]})"
        logger.warning(
            "%s: %d failed evaluation(s)%s and %d failed fresh rollout(s), left out of "
            "best-so-far and the fresh-sample loss",
            context,
            int(failed.sum()),
            example if failed.any() else "",
            fresh.failed,
        )


def _as_trace(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with the trace columns in order and their dtypes, then any detail columns."""
    details = [column for column in frame.columns if column.startswith(DETAIL_PREFIX)]
    costs = {name: "int64" for name in COST_COLUMNS if name in frame.columns}
    return frame[[*TRACE_COLUMNS, *costs, *details]].astype({**TRACE_COLUMNS, **costs})


def run_job(job: Job, records: dict[str, Any] | None = None) -> pd.DataFrame:
    """Run every repetition seed of ``job``; the trace, one row per evaluation.

    A repetition that fails keeps its rows (``status`` failed) and the job goes on with the
    next seed (:func:`run_repetition`). ``records``, when given, receives one entry per seed.

    Raises:
        OptimizerError: unknown optimizer (the message lists the valid names) or option.
        ProblemError: unknown problem (the message lists the valid names) or size.
        EvaluationFailedError: an evaluation failed under ``on_failure="stop"``; the
            message names the method, problem, d, K, scoring, seed and evaluation.
        JobFailedError: every repetition failed before its first evaluation.
    """
    frames: list[pd.DataFrame] = []
    reasons: list[str] = []
    for seed in job.seeds:
        steps, entry = _repetition(job, seed, provenance=records is not None)
        if records is not None:
            records[str(seed)] = entry
        frames.append(steps)
        reasons.append(f"seed {seed}: {entry['error']}")
    kept = [steps for steps in frames if len(steps)]
    if not kept:
        raise JobFailedError(
            f"every seed of {job.describe()} failed before its first evaluation ({reasons[0]}); "
            f"fix that error (the log names each seed's) and run the job again"
        )
    import pandas as pd  # only now: a job imports pandas once its work is done (start-up)

    return _as_trace(pd.concat(kept, ignore_index=True))
