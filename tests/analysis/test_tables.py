from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from casbo_bench.analysis.stats import MANN_WHITNEY, WILCOXON, holm_adjust
from casbo_bench.analysis.tables import (
    MissingReferenceError,
    UnknownOptimizerError,
    build_tables,
    write_tables,
)
from casbo_bench.schemas.tables import TableValidationError
from casbo_bench.schemas.trace import CELL_KEYS, SETTING_KEYS

TARGETS = (1e2, 1.0, 1e-2, 1e-4)


@pytest.fixture(scope="module")
def tables(traces: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return build_tables(traces, reference="casbo", targets=TARGETS)


def combinations(frame: pd.DataFrame, keys: list[str]) -> set[tuple[object, ...]]:
    return set(frame[keys].drop_duplicates().itertuples(index=False, name=None))


def test_every_cell_of_the_input_is_in_every_table(
    traces: pd.DataFrame, tables: dict[str, pd.DataFrame]
) -> None:
    cells = combinations(traces, list(CELL_KEYS))
    assert combinations(tables["final_loss"], list(CELL_KEYS)) == cells
    assert len(tables["final_loss"]) == len(cells)
    assert combinations(tables["ert"], list(CELL_KEYS)) == cells
    assert len(tables["ert"]) == len(cells) * len(TARGETS)
    others = {cell for cell in cells if cell[0] != "casbo"}
    for name in ("significance", "significance_fresh"):
        compared = combinations(tables[name], ["method", *SETTING_KEYS])
        assert compared == others
        assert (tables[name]["reference"] == "casbo").all()


def test_final_loss_values(traces: pd.DataFrame, tables: dict[str, pd.DataFrame]) -> None:
    runs = traces[
        (traces["method"] == "cmaes")
        & (traces["problem"] == "sphere")
        & (traces["d"] == 5)
        & (traces["K"] == 3)
    ]
    final = runs.groupby("seed")["loss"].min().to_numpy()
    fresh = runs.groupby("seed")["fresh_sample_loss"].first().to_numpy()
    row = (
        tables["final_loss"].set_index(list(CELL_KEYS)).loc[("cmaes", "sphere", 5, 3, "cumulative")]
    )
    assert row["n_seeds"] == 10 and row["budget"] == 40 and row["n_fresh"] == 10
    assert row["best_median"] == pytest.approx(np.median(final))
    assert row["best_q25"] == pytest.approx(np.quantile(final, 0.25))
    assert row["best_q75"] == pytest.approx(np.quantile(final, 0.75))
    assert row["best_mean"] == pytest.approx(final.mean())
    assert row["best_sd"] == pytest.approx(final.std(ddof=1))
    assert row["best_ci_low"] <= row["best_median"] <= row["best_ci_high"]
    assert row["fresh_median"] == pytest.approx(np.median(fresh))


def test_bootstrap_is_seeded(traces: pd.DataFrame, tables: dict[str, pd.DataFrame]) -> None:
    again = build_tables(traces, targets=TARGETS)
    pd.testing.assert_frame_equal(again["final_loss"], tables["final_loss"])


def test_significance(tables: dict[str, pd.DataFrame]) -> None:
    table = tables["significance"]
    assert (table["test"] == WILCOXON).all()
    assert (table["n_pairs"] == 10).all()
    np.testing.assert_allclose(table["p_holm"], holm_adjust(table["p_value"].to_numpy()))
    # the synthetic casbo decays fastest at every seed: 16 comparisons at p = 2/2^10
    # survive Holm (16 * 2/1024 = 0.031 < 0.05) and all say the baseline is worse
    assert (table["verdict"] == "worse").all()
    assert (table["win_fraction"] == 0.0).all()
    assert (table["median_difference"] > 0).all()


def test_unequal_seeds_fall_back_to_rank_sum(traces: pd.DataFrame) -> None:
    dropped = (
        (traces["method"] == "cmaes")
        & (traces["problem"] == "sphere")
        & (traces["d"] == 2)
        & (traces["K"] == 1)
        & (traces["seed"] == 9)
    )
    table = build_tables(traces[~dropped], targets=TARGETS)["significance"]
    changed = (
        (table["method"] == "cmaes")
        & (table["problem"] == "sphere")
        & (table["d"] == 2)
        & (table["K"] == 1)
    )
    assert (table.loc[changed, "test"] == MANN_WHITNEY).all()
    assert table.loc[changed, "n_pairs"].item() == 9 * 10
    assert (table.loc[~changed, "test"] == WILCOXON).all()


def test_missing_reference_is_named(traces: pd.DataFrame) -> None:
    with pytest.raises(MissingReferenceError, match="'casbo-diag' is not in the traces"):
        build_tables(traces, reference="casbo-diag")
    partial = traces[~((traces["method"] == "casbo") & (traces["problem"] == "sphere"))]
    with pytest.raises(MissingReferenceError, match="problem=sphere"):
        build_tables(partial)


def test_write_tables_reads_back(tables: dict[str, pd.DataFrame], tmp_path: Path) -> None:
    paths = write_tables(tables, tmp_path / "tables")
    assert [path.name for path in paths] == [
        f"{name}.{suffix}" for name in tables for suffix in ("csv", "md", "tex", "html")
    ]
    assert sorted(p.name for p in (tmp_path / "tables").iterdir()) == sorted(p.name for p in paths)
    for name, frame in tables.items():
        csv = pd.read_csv(tmp_path / "tables" / f"{name}.csv")
        pd.testing.assert_frame_equal(csv, frame, check_dtype=False, rtol=1e-12)

        markdown = (tmp_path / "tables" / f"{name}.md").read_text().splitlines()
        assert markdown[0].startswith("# ") and name in markdown[0]
        rows = [line for line in markdown if line.startswith("|")]
        assert len(rows) == len(frame) + 2
        header = [cell.strip() for cell in rows[0].strip("|").split("|")]
        assert header == list(frame.columns)

        latex = (tmp_path / "tables" / f"{name}.tex").read_text()
        assert latex.count(r"\toprule") == latex.count(r"\bottomrule") == 1
        body = latex.split(r"\midrule")[1].split(r"\bottomrule")[0].strip().splitlines()
        assert len(body) == len(frame)
        assert all(line.count("&") == frame.shape[1] - 1 for line in body)

        page = (tmp_path / "tables" / f"{name}.html").read_text()
        assert page.startswith("<!DOCTYPE html>") and f"({name})</title>" in page
        assert page.count("<tr>") == len(frame) + 1
        assert f"<th>{frame.columns[0]}</th>" in page


def test_fresh_kind_says_what_each_fresh_sample_is(
    traces: pd.DataFrame, tables: dict[str, pd.DataFrame], tmp_path: Path
) -> None:
    """CASBO and random search hand over a law, CMA-ES a point: the final-loss table says so
    in a column, and its Markdown, LaTeX and HTML in a footnote naming the methods."""
    final = tables["final_loss"]
    kinds = final.groupby("method")["fresh_kind"].unique().map(list).to_dict()
    assert kinds == {"casbo": ["law"], "cmaes": ["point"], "random": ["law"]}
    write_tables({"final_loss": final}, tmp_path)
    markdown = (tmp_path / "final_loss.md").read_text()
    assert "fresh_kind law: new draws from the law the method adapted" in markdown
    assert "best candidate repeated" in markdown and "(cmaes)." in markdown
    assert markdown.index("(casbo, random).") > markdown.index("| fresh_kind |")
    assert r"{\footnotesize fresh\_kind point:" in (tmp_path / "final_loss.tex").read_text()
    assert "<p>fresh_kind point:" in (tmp_path / "final_loss.html").read_text()
    relabelled = build_tables(
        traces, targets=TARGETS, fresh_kinds={"casbo": "point"} | {"cmaes": "law", "random": "law"}
    )["final_loss"]
    assert set(relabelled.loc[relabelled["method"] == "casbo", "fresh_kind"]) == {"point"}
    with pytest.raises(UnknownOptimizerError, match=r"\['mystery'\] are not registered"):
        build_tables(traces.assign(optimizer="mystery"), targets=TARGETS)


def test_numbers_have_three_significant_digits(
    tables: dict[str, pd.DataFrame], tmp_path: Path
) -> None:
    write_tables({"ert": tables["ert"]}, tmp_path)
    markdown = (tmp_path / "ert.md").read_text()
    first = tables["ert"].iloc[0]
    assert f"| {first['ert']:.2e} |" in markdown
    assert "| inf |" in markdown  # random never reaches 1e-4
    latex = (tmp_path / "ert.tex").read_text()
    assert r"$\infty$" in latex and r"{\times}10^{" in latex


def test_a_failed_rename_leaves_no_temporary_files(
    tables: dict[str, pd.DataFrame], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(source: object, target: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("casbo_bench.files.os.replace", refuse)
    with pytest.raises(OSError, match="disk full"):
        write_tables(tables, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_bad_table_writes_nothing(tables: dict[str, pd.DataFrame], tmp_path: Path) -> None:
    write_tables(tables, tmp_path)
    before = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    bad = dict(tables)
    bad["final_loss"] = tables["final_loss"].assign(n_seeds=0)
    # every other table changed but still valid (its rows reversed): none of them is written
    changed = {
        name: frame.iloc[::-1].reset_index(drop=True)
        for name, frame in tables.items()
        if name != "final_loss"
    }
    with pytest.raises(TableValidationError, match="final_loss"):
        write_tables({**changed, "final_loss": bad["final_loss"]}, tmp_path)
    after = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    assert after == before


def test_the_views_are_built_beside_the_tables(tables: dict[str, pd.DataFrame]) -> None:
    assert {"ert_inf_share", "fixed_budget", "ranks", "ecdf"} <= set(tables)
    share = tables["ert_inf_share"]
    assert share["level"].iloc[:-1].tolist() == sorted(TARGETS, reverse=True)
    assert share["cells"].iloc[-1] == len(tables["ert"])
    assert share["infinite"].iloc[-1] == int(np.isinf(tables["ert"]["ert"]).sum())


def test_default_targets_are_relative(traces: pd.DataFrame) -> None:
    built = build_tables(traces, reference="casbo")
    assert set(built["ert"]["target_rule"]) == {"relative"}
    assert set(built["ecdf"]["target_rule"]) == {"relative"}
    assert len(built["ert_inf_share"]) == 6 + 1
