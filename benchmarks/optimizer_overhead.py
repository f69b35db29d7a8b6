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

Run from the repository root::

    .venv/bin/python benchmarks/optimizer_overhead.py

The last line printed is ``overhead ratio casbo/pycma at d=1000: <x>`` (ratio of the means).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass

import cma
import numpy as np
import torch
from threadpoolctl import threadpool_info, threadpool_limits

from casbo_bench.optimizers import SearchSpace
from casbo_bench.optimizers.casbo import CASBO

DIMENSIONS = (10, 100, 500, 1000, 2000)


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


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (or what the platform module knows)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


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
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"machine: {cpu_model()}, {os.cpu_count()} cores; torch threads "
        f"{torch.get_num_threads()}, numpy BLAS threads {numpy_blas_threads()}; "
        f"load average (1, 5, 15 min) {load}"
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
    parser.add_argument("--dims", type=int, nargs="+", default=list(DIMENSIONS))
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
    if 1000 not in args.dims:
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
