"""COCO's bbob suite through cocoex: the 24 noiseless functions as plain problems.

``bbob-fNN`` is COCO's function fNN (Hansen, Finck, Ros and Auger 2009, "Real-parameter
black-box optimization benchmarking 2009: noiseless functions definitions") as computed by
the C code of PyPI's ``coco-experiment`` (``import cocoex``), with COCO's instances,
dimensions, domain and targets and no rotation or shift of casbo-bench's: the test
functions' seeded instances (:mod:`casbo_bench.problems.instance`) are not used.

- **Instances.** Repetition seed ``s`` is COCO instance ``s + 1`` (:func:`coco_instance`) in
  every job: seeds 0-4 are COCO's instances 1-5, seeds 0-14 the 15 instances 1-15 of the
  bbob-2010 suite (``cocoex.Suite("bbob", "year: 2010", "")``). The family is registered
  with ``own_instances`` (:class:`casbo_bench.problems.ProblemFamily`), so the runner hands
  the builder the repetition seed itself, not a seed derived from it.
- **Dimensions**: COCO's ``d`` in :data:`BBOB_DIMS` (cocoex has no others).
- **Loss**: ``f(x) - f_opt >= 0``, the precision COCO sets its targets on, with ``f_opt``
  the instance's optimal value (``cocoex.BareProblem.best_value()``); the ERT targets
  1e2 ... 1e-8 of config/bbob.yaml are COCO's target precisions. ``f(x) >= f_opt`` and
  floating-point subtraction is monotone, so the loss is never negative; it is 0 at
  ``x_opt`` (``best_parameter()``, in [-4, 4]^d). The region of interest is COCO's
  [-5, 5]^d; the functions are defined on all of R^d, and nothing is clipped.
- **Initial law** N(0, 2^2 I) (``initial_scale = 2``, docs/method.md section 4b): every
  method's first batch is drawn from it (TuRBO's cube through ``x = 2 Phi^{-1}(u)``), so
  95% of each coordinate's draws fall in [-4, 4], where COCO places ``x_opt``.
- **Plain only**: K = 1 and ``final`` scoring (:func:`check_bbob`).

**COCO data.** Given ``coco_folder``, the search's evaluations go through the cocoex problem
observed by COCO's ``bbob`` observer, which writes COCO's data format (``bbobexp_f<f>.info``,
``data_f<f>/bbobexp_f<f>_DIM<d>.dat``, ``.tdat``, ...) into that folder. A process keeps one
observer per folder (:func:`_observer`), so every repetition of a job (one instance each) is
recorded in the job's one folder, as COCO records one algorithm's runs; the folder must be
new or empty, because cocoex would write a second observer's data beside it, into
``<folder>-0001``. :meth:`BbobProblem.end_search`, which the runner calls when the budget is
spent, closes the observed problem (COCO then writes the run's last line), so the fresh
samples, a measurement after the search, are evaluated unobserved. cocoex's bbob observer
observes one problem at a time and ends the process when a second is observed while the
first is open: building an observed problem closes the one still open.

Nothing here imports cocoex until a problem is built: names, summaries and size checks are
static (``casbo-bench list`` and the workflow read them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from casbo_bench.problems.base import FloatArray, Problem, ProblemError

BBOB_FUNCTIONS: tuple[str, ...] = (
    "sphere",
    "separable ellipsoid",
    "separable Rastrigin",
    "Bueche-Rastrigin",
    "linear slope",
    "attractive sector",
    "step ellipsoid",
    "Rosenbrock, original",
    "Rosenbrock, rotated",
    "ellipsoid (rotated)",
    "discus",
    "bent cigar",
    "sharp ridge",
    "different powers",
    "Rastrigin (rotated)",
    "Weierstrass",
    "Schaffers F7",
    "Schaffers F7, moderately ill-conditioned",
    "composite Griewank-Rosenbrock F8F2",
    "Schwefel x sin(x)",
    "Gallagher's Gaussian 101-me peaks",
    "Gallagher's Gaussian 21-hi peaks",
    "Katsuura",
    "Lunacek bi-Rastrigin",
)
"""COCO's names of the bbob functions f1 ... f24, in order."""

BBOB_DIMS: tuple[int, ...] = (2, 3, 5, 10, 20, 40)
"""The dimensions of COCO's bbob suite."""

BBOB_INITIAL_SCALE = 2.0
"""s0 of every method's initial law N(0, s0^2 I) on bbob."""

NAME_PREFIX = "bbob-f"


def bbob_names() -> list[str]:
    """``bbob-f01`` ... ``bbob-f24``."""
    return [f"{NAME_PREFIX}{number:02d}" for number in range(1, len(BBOB_FUNCTIONS) + 1)]


def describe_bbob() -> dict[str, str]:
    """Every bbob problem with its one-line summary."""
    return {
        name: f"COCO bbob f{number}, {title} (cocoex; COCO's instances, domain and targets)"
        for number, (name, title) in enumerate(zip(bbob_names(), BBOB_FUNCTIONS, strict=True), 1)
    }


def function_number(name: str) -> int:
    """COCO's function number of ``name``: ``bbob-f08`` -> 8.

    Raises:
        ProblemError: ``name`` is no bbob problem.
    """
    if name not in bbob_names():
        raise ProblemError(f"unknown bbob problem {name!r}; choose one of bbob-f01 ... bbob-f24")
    return int(name.removeprefix(NAME_PREFIX))


def coco_instance(seed: int) -> int:
    """COCO's instance of repetition seed ``seed``: ``seed + 1`` (seeds 0-4: instances 1-5).

    >>> [coco_instance(seed) for seed in range(5)]
    [1, 2, 3, 4, 5]
    """
    return int(seed) + 1


def check_bbob(name: str, dim: int, n_steps: int, scoring: str) -> None:
    """Refuse a size bbob does not have: d outside :data:`BBOB_DIMS`, K > 1, or a scoring
    other than ``final``.

    Raises:
        ProblemError: naming the size and the fix.
    """
    if dim not in BBOB_DIMS:
        raise ProblemError(
            f"{name} exists in COCO's dimensions {', '.join(map(str, BBOB_DIMS))}; "
            f"got d = {dim}; choose one of those"
        )
    if n_steps != 1:
        raise ProblemError(
            f"{name} is a plain problem (K = 1): COCO's function of one point; got K = "
            f"{n_steps}; use steps: [1] (--steps 1)"
        )
    if scoring != "final":
        raise ProblemError(
            f"{name} is a plain problem scored on its one point; got scoring {scoring!r}; "
            f"use scoring 'final'"
        )


def check_coco_folder(folder: Path) -> None:
    """Refuse a COCO observer folder cocoex cannot write as asked.

    Raises:
        ProblemError: the path holds a double quote (cocoex's option string cannot carry
            one), is a file, or is a folder that already holds files (cocoex would write
            into ``<folder>-0001`` instead).
    """
    if '"' in str(folder):
        raise ProblemError(
            f"the COCO folder {folder} holds a double quote, which cocoex's options cannot "
            f"carry; name a folder without one"
        )
    if folder.exists() and not folder.is_dir():
        raise ProblemError(f"the COCO folder {folder} is a file; name a new or empty folder")
    if folder.is_dir() and any(folder.iterdir()):
        raise ProblemError(
            f"the COCO folder {folder} already holds files (cocoex would write beside it, "
            f"into {folder}-0001); remove it or name a new or empty folder"
        )


_OBSERVERS: dict[Path, tuple[str, Any]] = {}
"""COCO observers of this process: folder -> (algorithm, observer)."""

_OBSERVED: list[BbobProblem] = []
"""The problem cocoex's bbob observer observes now (at most one)."""


def _observer(folder: Path, algorithm: str) -> Any:
    """This process's COCO ``bbob`` observer writing into ``folder`` as ``algorithm``.

    Raises:
        ProblemError: a folder :func:`check_coco_folder` refuses, an algorithm name with a
            double quote, or a folder already observed for another algorithm.
    """
    import cocoex

    folder = folder.absolute()
    known = _OBSERVERS.get(folder)
    if known is not None:
        if known[0] != algorithm:
            raise ProblemError(
                f"the COCO folder {folder} holds {known[0]!r}'s runs; name another folder for "
                f"{algorithm!r}"
            )
        return known[1]
    check_coco_folder(folder)
    if '"' in algorithm:
        raise ProblemError(
            f"the method label {algorithm!r} holds a double quote, which cocoex's options "
            f"cannot carry; choose a label without one"
        )
    if folder.is_dir():
        folder.rmdir()  # empty (checked): an existing folder would send cocoex to <folder>-0001
    folder.parent.mkdir(parents=True, exist_ok=True)
    # cocoex prepends "exdata/" to result_folder unless outer_folder is given.
    options = (
        f'outer_folder: "{folder.parent}" result_folder: "{folder.name}" '
        f'algorithm_name: "{algorithm}" algorithm_info: "casbo-bench method {algorithm}"'
    )
    observer = cocoex.Observer("bbob", options)
    if Path(observer.result_folder) != folder:
        raise ProblemError(
            f"cocoex writes the COCO data to {observer.result_folder}, not {folder}; remove "
            f"that folder and run again"
        )
    _OBSERVERS[folder] = (algorithm, observer)
    return observer


class BbobProblem(Problem):
    """One instance of a bbob function in one dimension, K = 1: loss ``f(x) - f_opt``.

    Args:
        name: ``bbob-f01`` ... ``bbob-f24``.
        dim: d, one of :data:`BBOB_DIMS`.
        instance: COCO's instance number (>= 1).
        coco_folder: where COCO's observer writes the search's evaluations (None: no COCO
            data).
        coco_algorithm: the algorithm name COCO's data carry (``algId``; the method label).

    Attributes:
        function: COCO's function number.
        instance: COCO's instance number.
        best_value: f_opt, the instance's optimal value.
        best_parameter: x_opt, a ``d`` array.
    """

    n_steps = 1
    optimal_loss = 0.0
    initial_scale = BBOB_INITIAL_SCALE

    def __init__(
        self,
        name: str,
        dim: int,
        instance: int,
        coco_folder: Path | None = None,
        coco_algorithm: str | None = None,
    ) -> None:
        import cocoex

        self.name = name
        self.dim = dim
        self.function = function_number(name)
        self.instance = instance
        self._bare = cocoex.BareProblem("bbob", self.function, dim, instance)
        self.best_value = float(self._bare.best_value())
        self.best_parameter = np.asarray(self._bare.best_parameter(), dtype=np.float64)
        self._suite: Any = None
        self._observed: Any = None
        if coco_folder is not None:
            observer = _observer(Path(coco_folder), coco_algorithm or name)
            for open_problem in list(_OBSERVED):
                open_problem.end_search()
            # The suite must outlive its problem; both stay referenced until end_search.
            selection = f"dimensions: {dim} function_indices: {self.function}"
            self._suite = cocoex.Suite("bbob", f"instances: {instance}", selection)
            self._observed = self._suite[0]
            self._observed.observe_with(observer)
            _OBSERVED.append(self)

    @property
    def coco_id(self) -> str:
        """COCO's name of the instance, e.g. ``bbob_f001_i01_d02``."""
        return str(self._bare.id)

    @property
    def observed(self) -> bool:
        """Whether COCO's observer records the evaluations now."""
        return self._observed is not None

    def rollout(self, noise: FloatArray) -> FloatArray:
        """``n x 1`` losses ``f(x) - f_opt`` of the points ``x = noise[:, 0]`` (``n x 1 x d``),
        evaluated one by one through cocoex (observed while the search runs)."""
        points = self.check_noise(noise)[:, 0]
        function = self._bare if self._observed is None else self._observed
        values = np.array(
            [function(np.ascontiguousarray(point)) for point in points], dtype=np.float64
        )
        return (values - self.best_value)[:, None]

    def end_search(self) -> None:
        """Close the observed problem: COCO writes the run's last line, and later
        evaluations (the fresh samples) are not recorded."""
        if self._observed is None:
            return
        observed, self._observed = self._observed, None
        _OBSERVED.remove(self)
        observed.free()
        self._suite = None

    def instance_record(self) -> dict[str, Any]:
        """COCO's suite, function, instance, id and f_opt (for the trace's provenance)."""
        return {
            "suite": "bbob",
            "function": self.function,
            "instance": self.instance,
            "coco_id": self.coco_id,
            "f_opt": self.best_value,
        }


def make_bbob_problem(
    name: str,
    dim: int,
    n_steps: int,
    scoring: str,
    seed: int,
    coco_folder: str | Path | None = None,
    coco_algorithm: str | None = None,
) -> BbobProblem:
    """COCO instance ``seed + 1`` of ``name`` in dimension ``dim``.

    Args:
        seed: the repetition seed itself (the family's ``own_instances``).
        coco_folder: the folder COCO's observer writes the search's evaluations to (None:
            no COCO data).
        coco_algorithm: the algorithm name in COCO's data (the method label).

    Raises:
        ProblemError: a size :func:`check_bbob` refuses, or a COCO folder
            :func:`check_coco_folder` refuses.
    """
    check_bbob(name, dim, n_steps, scoring)
    folder = None if coco_folder is None else Path(coco_folder)
    return BbobProblem(name, dim, coco_instance(seed), folder, coco_algorithm)
