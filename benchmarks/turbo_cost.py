"""Wall-clock cost of one TuRBO-1 run against its budget and dimension.

TuRBO refits a GP on every evaluation of its current run and draws exact joint Thompson
samples over ``min(5000, max(2000, 200 d))`` candidates, so a run's cost grows with both
the budget and d; config budgets are sized from this table. The black box is the rotated
sphere (its cost is negligible). Budgets are checkpoints of one run per d: the trace of a
run with budget 100 is the first 100 evaluations of a run with budget 500 (the optimizer
is deterministic given its seed), so the seconds at 100 evaluations are the cost of a
budget-100 run.

Usage::

    python benchmarks/turbo_cost.py                       # d = 2 5 10 20 50; 100 200 500
    python benchmarks/turbo_cost.py --dims 2 5 --budgets 50 100 --threads 2
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from casbo_bench.optimizers import SearchSpace, make_optimizer
from casbo_bench.problems import make_problem


def seconds_at_budgets(dim: int, budgets: list[int], seed: int) -> dict[int, float]:
    """Seconds one TuRBO run on the ``dim``-d rotated sphere takes to spend each budget."""
    problem = make_problem("sphere", dim, seed=seed)
    optimizer = make_optimizer("turbo", SearchSpace(n_blocks=1, dim=dim), seed=seed, device="cpu")
    remaining = sorted(budgets)
    seconds: dict[int, float] = {}
    start = time.perf_counter()
    while remaining:
        candidates = optimizer.ask()[: remaining[-1] - optimizer.n_evaluations]
        optimizer.tell(candidates, problem.rollout(candidates))
        while remaining and optimizer.n_evaluations >= remaining[0]:
            seconds[remaining.pop(0)] = time.perf_counter() - start
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dims", type=int, nargs="+", default=[2, 5, 10, 20, 50])
    parser.add_argument("--budgets", type=int, nargs="+", default=[100, 200, 500])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default 1: the workflow runs one job per core)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    budgets = sorted(args.budgets)
    print(
        f"TuRBO-1 seconds per run (rotated sphere, seed {args.seed}, torch "
        f"{torch.__version__}, {args.threads} thread(s), {platform.processor() or 'cpu'})"
    )
    header = "| d | " + " | ".join(f"budget {b}" for b in budgets) + " |"
    print(header)
    print("|---" * (len(budgets) + 1) + "|")
    for dim in args.dims:
        seconds = seconds_at_budgets(dim, budgets, args.seed)
        cells = " | ".join(f"{seconds[b]:.1f}{'*' if b <= 2 * dim else ''}" for b in budgets)
        print(f"| {dim} | {cells} |", flush=True)
    if any(b <= 2 * dim for b in budgets for dim in args.dims):
        print("* the budget is spent on the initial Sobol design of 2 d points: no GP is fitted")


if __name__ == "__main__":
    main()
