"""Per-iteration cost of CASBO (one block) against pycma's CMA-ES, side by side.

What is timed is the optimizer alone: one ``ask`` plus one ``tell`` with the default population
of each method. The losses (a shifted sphere, ``sum_j (x_j - 1)^2``) are computed outside the
timer. The two methods alternate iteration by iteration, and which of them goes first
alternates too, so a change in machine load hits both alike.

pycma updates its covariance matrix every iteration but eigendecomposes it lazily, every
``1 / (c1 + cmu) / d / 10`` iterations (``es.sm.lazy_update_gap``); those ``O(d^3)``
decompositions are most of its cost at large d, so each dimension runs long enough to include
several of them (``--eigendecompositions``, counted from ``es.sm.count_eigen`` and printed).
CASBO never decomposes a ``d x d`` matrix: its whitened update costs ``O(d^2 N)``.

Both libraries run on one thread each by default (``--threads``): on a small machine shared
with other jobs, multi-threaded BLAS and OpenMP regions mostly measure how long a thread waits
for a busy core, not what the algorithm costs. ``--threads 0`` keeps each library's default.

A second table sets CASBO's step against its floor at d = 500, 1000, 2000 (``--step-dims``):
three ``d x d`` by ``d x N`` float64 products (``A eps^T`` to propose, ``A U`` and the rank-N
update of A in the step as first written), each a plain ``torch`` product on one thread. It
times the step (``ask`` plus ``tell``) and the floor alternately, and the parts of the step
that do not shrink with a cheaper update: the ``N x d`` standard normal draw, the proposal's
product and the update's rank-N product that adds into A; "rest" is what remains (the QR and
eigendecomposition of ``N x N`` matrices, the score normalization, some forty small torch
calls). These are CPU times of the timing thread (``time.thread_time``), not wall times: on a
shared machine a thread's wall time includes the time it waits for a core. ``--ref REF`` times
``casbo.py`` as it is at git ref REF beside today's, in the same loop.

Run from the repository root::

    .venv/bin/python benchmarks/optimizer_overhead.py
    .venv/bin/python benchmarks/optimizer_overhead.py --dims 1000 --ref HEAD~1

The pycma table's last line is ``overhead ratio casbo/pycma at d=1000: <x>`` (ratio of the
means); the step table's lines end ``step/floor at d=<d>: <x>``.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

import benchkit
import cma
import numpy as np
import torch
from benchkit import module_at
from threadpoolctl import threadpool_info, threadpool_limits

from casbo_bench.optimizers import SearchSpace
from casbo_bench.optimizers.casbo import CASBO

DIMENSIONS = (10, 100, 500, 1000, 2000)
STEP_DIMENSIONS = (500, 1000, 2000)
BURST = 5


@dataclass(frozen=True)
class Timing:
    """Per-iteration times (seconds) of both methods at one dimension."""

    dim: int
    casbo_popsize: int
    pycma_popsize: int
    iterations: int
    eigendecompositions: int
    casbo: np.ndarray
    pycma: np.ndarray

    @property
    def ratio_of_means(self) -> float:
        """Mean CASBO time over mean pycma time."""
        return float(self.casbo.mean() / self.pycma.mean())


def shifted_sphere(candidates: np.ndarray) -> np.ndarray:
    """``sum_j (x_j - 1)^2`` of a ``n x d`` array, a ``n`` array."""
    return np.square(candidates - 1.0).sum(axis=-1)


def iterations_for(gap: float, eigendecompositions: int, min_iterations: int) -> int:
    """Iterations that include ``eigendecompositions`` lazy decompositions at ``gap``.

    pycma decomposes when at least ``gap`` tells have passed since the last one, so
    ``k`` decompositions need about ``k * max(gap, 1)`` iterations; one gap is added for margin.
    """
    return max(min_iterations, math.ceil((eigendecompositions + 1) * max(gap, 1.0)))


def time_dimension(
    dim: int, seed: int, eigendecompositions: int, min_iterations: int, device: str
) -> Timing:
    """Alternate CASBO and pycma iterations at dimension ``dim`` and time each."""
    casbo = CASBO(SearchSpace(n_blocks=1, dim=dim), seed=seed, device=device)
    es = cma.CMAEvolutionStrategy(np.zeros(dim), 1.0, {"seed": seed, "verbose": -9})
    n_iterations = iterations_for(es.sm.lazy_update_gap, eigendecompositions, min_iterations)

    def casbo_iteration() -> float:
        start = time.perf_counter()
        candidates = casbo.ask()
        elapsed = time.perf_counter() - start
        losses = shifted_sphere(candidates[:, 0])[:, None]
        start = time.perf_counter()
        casbo.tell(candidates, losses)
        return elapsed + time.perf_counter() - start

    def pycma_iteration() -> float:
        start = time.perf_counter()
        solutions = es.ask()
        elapsed = time.perf_counter() - start
        losses = shifted_sphere(np.asarray(solutions)).tolist()
        start = time.perf_counter()
        es.tell(solutions, losses)
        return elapsed + time.perf_counter() - start

    for _ in range(2):  # warm-up: first calls load kernels and allocate
        casbo_iteration()
        pycma_iteration()
    eigen_before = es.sm.count_eigen
    methods: dict[str, Callable[[], float]] = {"casbo": casbo_iteration, "pycma": pycma_iteration}
    times: dict[str, list[float]] = {"casbo": [], "pycma": []}
    for iteration in range(n_iterations):
        order = ("casbo", "pycma") if iteration % 2 == 0 else ("pycma", "casbo")
        for name in order:
            times[name].append(methods[name]())
    return Timing(
        dim=dim,
        casbo_popsize=casbo.popsize,
        pycma_popsize=int(es.popsize),
        iterations=n_iterations,
        eigendecompositions=int(es.sm.count_eigen - eigen_before),
        casbo=np.array(times["casbo"]),
        pycma=np.array(times["pycma"]),
    )


@dataclass(frozen=True)
class StepTiming:
    """CPU times (seconds) of CASBO's step, its floor and its parts at one dimension."""

    dim: int
    popsize: int
    floor: np.ndarray
    step: np.ndarray
    step_before: np.ndarray | None
    draw: np.ndarray
    proposal: np.ndarray
    rank_update: np.ndarray


def casbo_at(ref: str) -> ModuleType:
    """``casbo_bench.optimizers.casbo`` as it is at git ref ``ref``."""
    return module_at(ref, "src/casbo_bench/optimizers/casbo.py", "casbo_before")


def cpu_seconds(call: Callable[[], object]) -> float:
    """The CPU time of this thread that ``call()`` takes."""
    start = time.thread_time()
    call()
    return time.thread_time() - start


def time_step(dim: int, seed: int, iterations: int, before: ModuleType | None) -> StepTiming:
    """Alternate CASBO steps (today's, and ``before``'s if given), the floor and the parts."""
    space = SearchSpace(n_blocks=1, dim=dim)
    optimizers = {"after": CASBO(space, seed=seed, device="cpu")}
    if before is not None:
        optimizers["before"] = before.CASBO(space, seed=seed, device="cpu")
    n = optimizers["after"].popsize
    generator = torch.Generator().manual_seed(seed)
    matrix = torch.randn(dim, dim, dtype=torch.float64, generator=generator)
    columns = torch.randn(dim, n, dtype=torch.float64, generator=generator)
    tiny = 1e-300  # the rank-N update adds a negligible product: the matrix stays as it is

    parts: dict[str, list[float]] = {
        name: [] for name in ("floor", "after", "before", "draw", "proposal", "rank_update")
    }
    timed: dict[str, Callable[[], float]] = {
        "floor": lambda: cpu_seconds(
            lambda: (matrix @ columns, matrix @ columns, matrix @ columns)
        ),
        "draw": lambda: cpu_seconds(
            lambda: torch.randn(n, 1, dim, dtype=torch.float64, generator=generator)
        ),
        "proposal": lambda: cpu_seconds(lambda: matrix @ columns),
        "rank_update": lambda: cpu_seconds(lambda: matrix.addmm_(columns, columns.T, alpha=tiny)),
    }
    for name, optimizer in optimizers.items():
        timed[name] = lambda optimizer=optimizer: step_seconds(optimizer)
        step_seconds(optimizer)  # warm-up: first calls load kernels and allocate
    # Rounds of BURST calls of each in turn, the order reversed every other round: consecutive
    # steps find A where a run's do (in cache), as the floor's three products do.
    for round_number in range(math.ceil(iterations / BURST)):
        for name in sorted(timed, reverse=round_number % 2 == 1):
            parts[name] += [timed[name]() for _ in range(BURST)]
    return StepTiming(
        dim=dim,
        popsize=n,
        floor=np.array(parts["floor"]),
        step=np.array(parts["after"]),
        step_before=np.array(parts["before"]) if before is not None else None,
        draw=np.array(parts["draw"]),
        proposal=np.array(parts["proposal"]),
        rank_update=np.array(parts["rank_update"]),
    )


def step_seconds(optimizer: CASBO) -> float:
    """CPU seconds of one ``ask`` plus one ``tell``, the losses (shifted sphere) left out."""
    start = time.thread_time()
    candidates = optimizer.ask()
    asked = time.thread_time() - start
    losses = shifted_sphere(candidates[:, 0])[:, None]
    start = time.thread_time()
    optimizer.tell(candidates, losses)
    return asked + time.thread_time() - start


def step_table(timings: list[StepTiming]) -> str:
    """A Markdown table of medians, milliseconds of CPU time, with step/floor ratios."""
    with_before = all(t.step_before is not None for t in timings)
    head = "| d | N | floor ms | step ms | step/floor |"
    if with_before:
        head += " step ms before | before/floor |"
    head += " draw ms | proposal product ms | rank-N update ms | rest ms |"
    lines = [head, "|" + "---:|" * head.count(" |")]
    for t in timings:
        floor, step = np.median(t.floor), np.median(t.step)
        parts = [np.median(t.draw), np.median(t.proposal), np.median(t.rank_update)]
        cells = [f"{t.dim}", f"{t.popsize}", f"{1e3 * floor:.3f}", f"{1e3 * step:.3f}"]
        cells.append(f"{step / floor:.2f}")
        if with_before and t.step_before is not None:
            before = np.median(t.step_before)
            cells += [f"{1e3 * before:.3f}", f"{before / floor:.2f}"]
        cells += [f"{1e3 * part:.3f}" for part in parts]
        cells.append(f"{1e3 * (step - sum(parts)):.3f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def numpy_blas_threads() -> str:
    """Threads of the BLAS numpy (hence pycma) calls, as threadpoolctl reports them."""
    pools = [
        f"{pool['internal_api']} {pool['num_threads']}"
        for pool in threadpool_info()
        if pool["user_api"] == "blas" and "numpy" in pool["filepath"]
    ]
    return ", ".join(pools) or "unknown"


def machine_line() -> str:
    """CPU model, core count, thread counts of both libraries and the load average."""
    return benchkit.machine_line(
        f"torch threads {torch.get_num_threads()}",
        f"numpy BLAS threads {numpy_blas_threads()}",
    )


def table(timings: list[Timing]) -> str:
    """A Markdown table of the timings, milliseconds per iteration."""
    lines = [
        "| d | N casbo | N pycma | iterations | pycma eigendecompositions | casbo median ms "
        "| casbo mean ms | pycma median ms | pycma mean ms | ratio of means |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for t in timings:
        lines.append(
            f"| {t.dim} | {t.casbo_popsize} | {t.pycma_popsize} | {t.iterations} "
            f"| {t.eigendecompositions} | {1e3 * np.median(t.casbo):.3f} "
            f"| {1e3 * t.casbo.mean():.3f} | {1e3 * np.median(t.pycma):.3f} "
            f"| {1e3 * t.pycma.mean():.3f} | {t.ratio_of_means:.3f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Parse the command line, pin the threads, run :func:`report`."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--dims", type=int, nargs="*", default=list(DIMENSIONS), help="pycma table ('': none)"
    )
    parser.add_argument(
        "--step-dims",
        type=int,
        nargs="*",
        default=list(STEP_DIMENSIONS),
        help="step-against-floor table (default 500 1000 2000; '': none)",
    )
    parser.add_argument("--step-iterations", type=int, default=60)
    parser.add_argument("--ref", help="git ref whose casbo.py the step table times beside today's")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--eigendecompositions",
        type=int,
        default=5,
        help="pycma eigendecompositions each dimension must include (default 5)",
    )
    parser.add_argument("--min-iterations", type=int, default=100)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="threads for torch and for numpy's BLAS alike (default 1; 0: each library's own "
        "default)",
    )
    args = parser.parse_args(argv)
    if args.dims and 1000 not in args.dims:
        parser.error("--dims must include 1000: the last line reports the ratio there")
    if args.threads < 0:
        parser.error(f"--threads must be >= 0; got {args.threads}")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
        with threadpool_limits(args.threads, user_api="blas"):
            report(args)
    else:
        report(args)


def report(args: argparse.Namespace) -> None:
    """Time every dimension of ``args.dims`` and print the machine, the table, the ratio."""
    print(machine_line(), flush=True)
    print(f"torch {torch.__version__}, cma {cma.__version__}, numpy {np.__version__}")
    if args.dims:
        pycma_report(args)
    if args.step_dims:
        before = casbo_at(args.ref) if args.ref else None
        print(
            f"casbo step against the floor (CPU time of the thread, median of "
            f"{args.step_iterations}); after: this checkout"
            + (f", before: casbo.py at {args.ref}" if args.ref else ""),
            flush=True,
        )
        steps = [time_step(dim, args.seed, args.step_iterations, before) for dim in args.step_dims]
        print(f"{machine_line()}")
        print(step_table(steps))
        for t in steps:
            print(f"step/floor at d={t.dim}: {np.median(t.step) / np.median(t.floor):.2f}")


def pycma_report(args: argparse.Namespace) -> None:
    """The pycma table: every dimension of ``args.dims``, the ratio at d = 1000."""
    print(f"casbo device: {args.device}; seed {args.seed}; timing ask + tell, losses excluded")
    timings = []
    started = time.perf_counter()
    for dim in args.dims:
        timings.append(
            time_dimension(
                dim, args.seed, args.eigendecompositions, args.min_iterations, args.device
            )
        )
        print(
            f"  d={dim}: {timings[-1].iterations} iterations, "
            f"{timings[-1].eigendecompositions} pycma eigendecompositions",
            flush=True,
        )
    print(f"total {time.perf_counter() - started:.0f} s; {machine_line()}")
    print(table(timings))
    at_1000 = next(t for t in timings if t.dim == 1000)
    print(f"overhead ratio casbo/pycma at d=1000: {at_1000.ratio_of_means:.3f}")


if __name__ == "__main__":
    main()
