from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from casbo_bench.analysis.tables import build_tables
from casbo_bench.schemas.tables import TABLE_SCHEMAS, TableValidationError, validate_table
from casbo_bench.schemas.trace import TRACE_COLUMNS


def small_traces() -> pd.DataFrame:
    """Two methods x one problem x six seeds x 12 evaluations; cmaes lags casbo."""
    rng = np.random.default_rng(5)
    runs = []
    for method, rate in (("casbo", 0.8), ("cmaes", 0.2)):
        for seed in range(6):
            evaluation = np.arange(1, 13)
            loss = 10.0 * np.exp(-rate * evaluation) * rng.lognormal(0.0, 0.5, 12)
            runs.append(
                pd.DataFrame(
                    {
                        "method": method,
                        "optimizer": method,
                        "problem": "sphere",
                        "d": 3,
                        "K": 1,
                        "scoring": "final",
                        "seed": seed,
                        "budget": 12,
                        "iteration": (evaluation - 1) // 3,
                        "evaluation": evaluation,
                        "loss": loss,
                        "best_so_far": np.minimum.accumulate(loss),
                        "wall_time": 0.01 * evaluation,
                        "expected_loss": np.nan,
                        "fresh_sample_loss": np.nan if method == "cmaes" else loss.min(),
                        "safeguard_events": 0,
                        "failed": False,
                        "error": "",
                        "status": "complete",
                    }
                )
            )
    return pd.concat(runs, ignore_index=True).astype(TRACE_COLUMNS)


@pytest.fixture(scope="module")
def tables() -> dict[str, pd.DataFrame]:
    """Absolute targets in the ERT (the ``relative`` fixture has the default ones)."""
    return build_tables(small_traces(), targets=(1.0, 1e-3))


@pytest.fixture(scope="module")
def relative() -> dict[str, pd.DataFrame]:
    return build_tables(small_traces())


def test_every_table_has_a_schema(tables: dict[str, pd.DataFrame]) -> None:
    assert set(tables) == set(TABLE_SCHEMAS)


@pytest.mark.parametrize("name", sorted(TABLE_SCHEMAS))
def test_accepts_what_build_tables_produces(tables: dict[str, pd.DataFrame], name: str) -> None:
    validate_table(name, tables[name])


def test_fresh_only_where_recorded(tables: dict[str, pd.DataFrame]) -> None:
    final = tables["final_loss"].set_index("method")
    assert final.loc["cmaes", "n_fresh"] == 0 and np.isnan(final.loc["cmaes", "fresh_median"])
    assert final.loc["casbo", "n_fresh"] == 6
    assert tables["significance_fresh"].empty  # cmaes recorded no fresh-sample loss


def _set(column: str, value: object) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def change(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.copy()
        frame.loc[frame.index[0], column] = value
        return frame

    return change


def _set_where_unrecorded(column: str, value: object) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def change(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.assign(**{column: frame[column].where(frame["n_fresh"] > 0, value)})

    return change


BAD_FRAMES: list[tuple[str, Callable[[pd.DataFrame], pd.DataFrame], str]] = [
    ("final_loss", _set("best_q25", 1e9), "best_q25 <= best_median <= best_q75"),
    ("final_loss", _set("n_seeds", 0), "n_seeds"),
    (
        "final_loss",
        _set("best_median", np.nan),
        "best-so-far statistics must be given exactly when n_seeds >= 1",
    ),
    ("final_loss", _set("failed_runs", -1), "column 'failed_runs' must be >= 0"),
    ("final_loss", _set("failed_evaluations", -2), "column 'failed_evaluations' must be >= 0"),
    ("final_loss", _set("scoring", "best"), "scoring"),
    ("final_loss", _set("best_sd", np.nan), "best_sd must be given exactly when n_seeds >= 2"),
    (
        "final_loss",
        _set_where_unrecorded("fresh_median", 1.0),
        "fresh-sample statistics must be given exactly when n_fresh >= 1",
    ),
    (
        "final_loss",
        lambda frame: pd.concat([frame, frame.head(1)]),
        "each (method, problem, d, K, scoring) must appear on one row only: 2 row(s) fail "
        "(rows 0, 2)",
    ),
    ("final_loss", lambda frame: frame.drop(columns="best_mean"), "missing column 'best_mean'"),
    ("final_loss", lambda frame: frame.assign(extra=1.0), "unexpected column 'extra'"),
    ("final_loss", lambda frame: frame.assign(d=frame["d"].astype(float)), "column 'd' has dtype"),
    ("significance", _set("p_value", 1.5), "p_value"),
    ("significance", _set("p_holm", 0.0), "p_holm >= p_value"),
    ("significance", _set("verdict", "maybe"), "verdict"),
    ("significance", _set("method", "casbo"), "compared with itself"),
    ("significance", _set("test", "t-test"), "test"),
    ("significance", _set("n_pairs", 7), "n_pairs must be n"),
    ("ert", _set("ert", np.inf), "inf exactly when successes == 0"),
    ("ert", _set("successes", 99), "successes <= runs"),
    ("ert", _set("target", np.nan), "target"),
    ("ert", _set("target_rule", "guessed"), "target_rule"),
    ("ert", _set("initial_gap", 3.0), "an absolute one the level itself"),
    (
        "ert",
        lambda frame: pd.concat([frame, frame.head(1)]),
        "each (method, problem, d, K, scoring, level) must appear on one row only",
    ),
    ("ert_inf_share", _set("infinite", 99), "infinite <= cells"),
    ("ert_inf_share", _set("share_infinite", 0.75), "share_infinite must be infinite / cells"),
    ("ert_inf_share", lambda frame: frame.head(2), "exactly one row (level empty)"),
    ("ecdf", _set("fraction", 1.5), "fraction"),
    ("ecdf", _set("evaluations", 10**6), "evaluations <= method_budget"),
    ("ecdf", _set("ci_low", 1.0), "ci_low <= ci_high"),
    ("ecdf", _set("pairs", 7), "pairs must be runs x targets"),
    ("ecdf", lambda frame: frame.assign(fraction=frame["fraction"][::-1].to_numpy()), "decrease"),
    ("fixed_budget", _set("best_q25", 1e9), "best_q25 <= best_median <= best_q75"),
    ("fixed_budget", _set("budget", 10**6), "budget <= method_budget"),
    ("fixed_budget", _set("failed_runs", 99), "failed_runs <= runs"),
    ("fixed_budget", _set("best_median", np.nan), "column 'best_median' has missing values"),
    ("ranks", _set("mean_rank", 0.5), "mean_rank"),
    ("ranks", _set("runner_up", "casbo"), "the runner-up must not be the winner"),
    ("ranks", _set("place", 2), "the winner's place must be 1"),
    ("ranks", _set("p_holm", 0.9), "significant needs p_holm < alpha"),
    ("ranks", _set("n_methods", 1), "n_methods"),
]


@pytest.mark.parametrize(("name", "corrupt", "message"), BAD_FRAMES)
def test_rejects_a_bad_frame(
    tables: dict[str, pd.DataFrame],
    name: str,
    corrupt: Callable[[pd.DataFrame], pd.DataFrame],
    message: str,
) -> None:
    with pytest.raises(TableValidationError) as error:
        validate_table(name, corrupt(tables[name]))
    text = str(error.value)
    assert f"table {name} failed validation" in text
    assert message in text
    assert len(text.splitlines()) == len(set(text.splitlines()))  # one line per check


def test_verdict_needs_a_significant_adjusted_p(tables: dict[str, pd.DataFrame]) -> None:
    frame = tables["significance"].copy()
    frame["verdict"] = "worse"
    frame["p_holm"] = 0.5
    frame["p_value"] = 0.5
    with pytest.raises(TableValidationError, match="needs p_holm < alpha"):
        validate_table("significance", frame)


def test_verdict_direction(tables: dict[str, pd.DataFrame]) -> None:
    frame = tables["significance"].copy()
    frame["median_difference"] = 1.0
    frame["verdict"] = "better"
    frame["p_holm"] = frame["p_value"] = 0.001
    with pytest.raises(TableValidationError, match="'better' needs median_difference <= 0"):
        validate_table("significance", frame)


def test_unknown_table(tables: dict[str, pd.DataFrame]) -> None:
    with pytest.raises(TableValidationError, match="no schema for a table named 'summary'"):
        validate_table("summary", tables["ert"])


def test_relative_targets_are_checked(relative: dict[str, pd.DataFrame]) -> None:
    ert = relative["ert"]
    validate_table("ert", ert)
    assert set(ert["target_rule"]) == {"relative"} and ert["initial_gap"].notna().all()
    scaled = ert.assign(target=ert["target"] * 2)
    with pytest.raises(TableValidationError, match="level x initial_gap"):
        validate_table("ert", scaled)
    other_gap = ert.copy()
    other_gap.loc[other_gap["method"] == "cmaes", "initial_gap"] *= 2
    other_gap.loc[other_gap["method"] == "cmaes", "target"] *= 2
    with pytest.raises(TableValidationError, match="every method of a setting must share"):
        validate_table("ert", other_gap)


@pytest.mark.parametrize("name", ["ert", "ert_inf_share", "ecdf", "fixed_budget", "ranks"])
def test_the_written_csv_validates(relative: dict[str, pd.DataFrame], name: str) -> None:
    # the workflow's readers validate what they read back from CSV
    text = relative[name].to_csv(index=False)
    validate_table(name, pd.read_csv(io.StringIO(text)))
