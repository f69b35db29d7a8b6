"""Synthetic traces shaped like the runner's: several methods, settings and seeds.

Each method's loss decays geometrically with its own rate, times seeded log-normal noise, so
the methods separate clearly (casbo fastest, random slowest) while every run still varies.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from casbo_bench.schemas.trace import TRACE_COLUMNS, validate_trace

RATES: dict[str, float] = {"casbo": 0.5, "cmaes": 0.3, "random": 0.05}
"""Per-evaluation decay rate of each synthetic method's loss."""

SETTINGS: tuple[tuple[int, str], ...] = ((1, "final"), (3, "cumulative"))
"""The (K, scoring) pairs of the synthetic grid."""


def synthetic_run(
    method: str,
    problem: str,
    d: int,
    steps: int,
    scoring: str,
    seed: int,
    budget: int,
    rng: np.random.Generator,
    batch: int = 4,
    offset: float = 0.0,
) -> pd.DataFrame:
    """One run's trace: ``budget`` evaluations in batches of ``batch``."""
    evaluation = np.arange(1, budget + 1)
    scale = 100.0 * d * steps
    loss = scale * np.exp(-RATES[method] * evaluation) * rng.lognormal(0.0, 1.0, budget)
    loss = loss + offset
    best = np.minimum.accumulate(loss)
    iteration = (evaluation - 1) // batch
    frame = pd.DataFrame(
        {
            "method": method,
            "optimizer": method,
            "problem": problem,
            "d": d,
            "K": steps,
            "scoring": scoring,
            "seed": seed,
            "budget": budget,
            "iteration": iteration,
            "evaluation": evaluation,
            "loss": loss,
            "best_so_far": best,
            "wall_time": 1e-3 * (iteration + 1),
            "expected_loss": np.nan,
            "fresh_sample_loss": best[-1] * 1.5,
            "safeguard_events": 0,
            "failed": False,
            "error": "",
            "status": "complete",
        }
    )
    return frame.astype(TRACE_COLUMNS)


def synthetic_traces(
    methods: Sequence[str] = ("casbo", "cmaes", "random"),
    problems: Sequence[str] = ("sphere", "ellipsoid"),
    dims: Sequence[int] = (2, 5),
    seeds: Sequence[int] = tuple(range(10)),
    budget: int = 40,
    offset: float = 0.0,
    seed: int = 20240601,
) -> pd.DataFrame:
    """A validated trace of every method x problem x d x (K, scoring) x seed."""
    rng = np.random.default_rng(seed)
    runs = [
        synthetic_run(method, problem, d, steps, scoring, s, budget, rng, offset=offset)
        for method in methods
        for problem in problems
        for d in dims
        for steps, scoring in SETTINGS
        for s in seeds
    ]
    return validate_trace(pd.concat(runs, ignore_index=True), source="synthetic")


def hand_run(
    method: str,
    seed: int,
    losses: list[float],
    budget: int | None = None,
    status: str = "complete",
    problem: str = "sphere",
) -> pd.DataFrame:
    """One run of ``losses`` (its budget: their number unless given, for a failed run)."""
    evaluation = np.arange(1, len(losses) + 1)
    return pd.DataFrame(
        {
            "method": method,
            "optimizer": method,
            "problem": problem,
            "d": 2,
            "K": 1,
            "scoring": "final",
            "seed": seed,
            "budget": budget or len(losses),
            "iteration": evaluation - 1,
            "evaluation": evaluation,
            "loss": losses,
            "best_so_far": np.minimum.accumulate(losses),
            "wall_time": 0.1 * evaluation,
            "expected_loss": np.nan,
            "fresh_sample_loss": np.nan,
            "safeguard_events": 0,
            "failed": False,
            "error": "",
            "status": status,
        }
    ).astype(TRACE_COLUMNS)
