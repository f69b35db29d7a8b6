from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from casbo_bench.analysis.stats import (
    MANN_WHITNEY,
    WILCOXON,
    bootstrap_median_band,
    bootstrap_median_ci,
    compare_to_reference,
    holm_adjust,
    verdict,
    win_fraction_matrix,
)


class TestHolm:
    def test_hand_computed_values(self) -> None:
        # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> 0.06
        adjusted = holm_adjust([0.01, 0.04, 0.03, 0.005])
        np.testing.assert_allclose(adjusted, [0.03, 0.06, 0.06, 0.02], rtol=1e-12)

    def test_capped_at_one(self) -> None:
        np.testing.assert_allclose(holm_adjust([0.5, 0.6, 0.2]), [1.0, 1.0, 0.6])

    def test_monotone_in_the_raw_order(self) -> None:
        p = np.random.default_rng(3).uniform(0, 0.2, size=50)
        adjusted = holm_adjust(p)
        order = np.argsort(p)
        assert (np.diff(adjusted[order]) >= 0).all()
        assert (adjusted >= p).all()
        assert (adjusted <= 1).all()

    def test_single_p_value_is_unchanged(self) -> None:
        np.testing.assert_allclose(holm_adjust([0.03]), [0.03])

    def test_nan_is_not_part_of_the_family(self) -> None:
        adjusted = holm_adjust([0.02, np.nan, 0.04])
        np.testing.assert_allclose(adjusted, [0.04, np.nan, 0.04])

    def test_empty_family(self) -> None:
        assert holm_adjust([]).size == 0

    @pytest.mark.parametrize("bad", [[-0.1], [1.5]])
    def test_rejects_values_outside_unit_interval(self, bad: list[float]) -> None:
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            holm_adjust(bad)


class TestCompareToReference:
    def test_same_seeds_use_wilcoxon_on_aligned_pairs(self) -> None:
        # seeds given in different orders must still be paired by seed
        method = compare_to_reference(
            [3.0, 1.0, 2.5, 0.5], [2, 0, 1, 3], [1.5, 2.0, 4.0, 1.0], [0, 1, 2, 3]
        )
        differences = np.array([1.0 - 1.5, 2.5 - 2.0, 3.0 - 4.0, 0.5 - 1.0])
        expected = stats.wilcoxon(differences)
        assert method.test == WILCOXON
        assert method.n_pairs == 4
        assert method.p_value == pytest.approx(expected.pvalue)
        assert method.statistic == pytest.approx(expected.statistic)
        assert method.median_difference == pytest.approx(np.median(differences))
        assert method.win_fraction == pytest.approx(3 / 4)

    def test_different_seeds_use_mann_whitney(self) -> None:
        result = compare_to_reference([1.0, 2.0], [0, 1], [3.0, 4.0, 5.0], [0, 1, 2])
        assert result.test == MANN_WHITNEY
        assert result.n_pairs == 6
        # pairwise differences -2, -3, -4, -1, -2, -3: median -2.5, every pair a win
        assert result.median_difference == pytest.approx(-2.5)
        assert result.win_fraction == 1.0
        expected = stats.mannwhitneyu([1.0, 2.0], [3.0, 4.0, 5.0])
        assert result.p_value == pytest.approx(expected.pvalue)
        assert result.min_attainable_p == pytest.approx(2 / 10)  # 2 / C(5, 2)

    def test_effect_sizes_count_ties_as_half(self) -> None:
        result = compare_to_reference([1.0, 2.0, 3.0], [0, 1, 2], [2.0, 2.0, 5.0], [0, 1, 2])
        assert result.median_difference == -1.0
        assert result.win_fraction == pytest.approx(2.5 / 3)
        # the zero difference is dropped: two non-zero differences, floor 2 / 2^2
        assert result.min_attainable_p == 0.5

    def test_three_seeds_cannot_reach_005(self) -> None:
        result = compare_to_reference([0.0, 0.0, 0.0], [0, 1, 2], [1.0, 2.0, 3.0], [0, 1, 2])
        assert result.min_attainable_p == 0.25
        assert result.p_value == pytest.approx(0.25)
        assert result.win_fraction == 1.0

    def test_ten_seeds_floor(self) -> None:
        seeds = np.arange(10)
        result = compare_to_reference(seeds * 0.0, seeds, seeds + 1.0, seeds)
        assert result.min_attainable_p == pytest.approx(2 / 2**10)
        assert result.p_value == pytest.approx(2 / 2**10)

    def test_identical_values_give_p_one(self) -> None:
        result = compare_to_reference([1.0, 2.0], [0, 1], [1.0, 2.0], [0, 1])
        assert (result.statistic, result.p_value, result.win_fraction) == (0.0, 1.0, 0.5)

    def test_repeated_seed_is_rejected(self) -> None:
        with pytest.raises(ValueError, match="repeated seeds"):
            compare_to_reference([1.0, 2.0], [0, 0], [1.0, 2.0], [0, 1])

    def test_nan_and_minus_infinity_are_rejected(self) -> None:
        for bad in (np.nan, -np.inf):
            with pytest.raises(ValueError, match="NaN or -inf"):
                compare_to_reference([bad], [0], [1.0], [0])

    def test_plus_infinity_is_a_failed_run_ranked_last(self) -> None:
        comparison = compare_to_reference(
            [np.inf, 1.0, 2.0, 3.0, 4.0], range(5), [0.5, 0.5, 1.5, 2.5, 3.5], range(5)
        )
        assert comparison.win_fraction == 0.0 and comparison.median_difference == 0.5


class TestVerdict:
    def test_direction_and_threshold(self) -> None:
        assert verdict(0.01, -1.0, 0.9) == "better"
        assert verdict(0.01, 2.0, 0.1) == "worse"
        assert verdict(0.05, -1.0, 0.9) == "no significant difference"
        assert verdict(0.01, 0.0, 0.8) == "better"
        assert verdict(0.01, 0.0, 0.5) == "no significant difference"

    def test_bad_alpha(self) -> None:
        with pytest.raises(ValueError, match="alpha"):
            verdict(0.01, -1.0, 0.9, alpha=1.5)


class TestBootstrap:
    def test_seeded_and_reproducible(self) -> None:
        values = np.random.default_rng(0).normal(size=20)
        first = bootstrap_median_ci(values, np.random.default_rng(7))
        second = bootstrap_median_ci(values, np.random.default_rng(7))
        assert first == second
        assert first.low <= np.median(values) <= first.high

    def test_constant_values_give_a_point(self) -> None:
        interval = bootstrap_median_ci([2.0, 2.0, 2.0], np.random.default_rng(0))
        assert (interval.low, interval.high) == (2.0, 2.0)

    def test_coverage_is_near_nominal(self) -> None:
        rng = np.random.default_rng(11)
        covered = 0
        trials = 200
        for _ in range(trials):
            sample = rng.normal(size=31)
            interval = bootstrap_median_ci(sample, rng, n_resamples=400)
            covered += interval.low <= 0.0 <= interval.high
        assert 0.88 <= covered / trials <= 0.995

    def test_band_shape(self) -> None:
        curves = np.random.default_rng(1).lognormal(size=(5, 12))
        low, high = bootstrap_median_band(curves, np.random.default_rng(2))
        assert low.shape == high.shape == (12,)
        assert (low <= high).all()
        assert (low >= curves.min(axis=0)).all() and (high <= curves.max(axis=0)).all()

    @pytest.mark.parametrize("seeds", [1, 2, 3, 10, 15])
    def test_band_is_the_quantiles_of_np_median_of_each_resample(self, seeds: int) -> None:
        """Bit for bit: the published figures' bands were drawn with np.median."""
        curves = np.random.default_rng(seeds).lognormal(size=(seeds, 40))
        curves[:, :5] = curves[0, :5]  # ties
        low, high = bootstrap_median_band(curves, np.random.default_rng(4), 0.9, 300)
        rows = np.random.default_rng(4).integers(0, seeds, size=(300, seeds))
        tail = (1.0 - 0.9) / 2.0
        expected = np.quantile(np.median(curves[rows], axis=1), [tail, 1.0 - tail], axis=0)
        assert np.array_equal(low, expected[0]) and np.array_equal(high, expected[1])

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [({"confidence": 1.0}, "confidence"), ({"n_resamples": 0}, "n_resamples")],
    )
    def test_bad_arguments(self, kwargs: dict[str, float], message: str) -> None:
        with pytest.raises(ValueError, match=message):
            bootstrap_median_ci([1.0, 2.0], np.random.default_rng(0), **kwargs)

    def test_rejects_non_finite_and_empty(self) -> None:
        with pytest.raises(ValueError, match="finite"):
            bootstrap_median_ci([1.0, np.inf], np.random.default_rng(0))
        with pytest.raises(ValueError, match="non-empty"):
            bootstrap_median_ci([], np.random.default_rng(0))


class TestWinFractionMatrix:
    def test_hand_computed(self) -> None:
        values = pd.DataFrame(
            {
                "method": ["a", "b", "c", "a", "b"],
                "cell": [1, 1, 1, 2, 2],
                "value": [1.0, 2.0, 0.0, 2.0, 2.0],
            }
        )
        matrix = win_fraction_matrix(values, ["cell"], ["a", "b", "c"])
        fraction = matrix.fraction
        assert fraction.loc["a", "b"] == pytest.approx(0.75)  # a wins cell 1, ties cell 2
        assert fraction.loc["b", "a"] == pytest.approx(0.25)
        assert fraction.loc["a", "c"] == 0.0 and fraction.loc["c", "a"] == 1.0
        assert matrix.n_cells.loc["a", "c"] == 1 and matrix.n_cells.loc["a", "b"] == 2
        assert np.isnan(np.diag(fraction.to_numpy())).all()

    def test_complementary(self) -> None:
        rng = np.random.default_rng(4)
        values = pd.DataFrame(
            {
                "method": np.repeat(["x", "y", "z"], 8),
                "cell": np.tile(np.arange(8), 3),
                "value": rng.integers(0, 3, size=24).astype(float),
            }
        )
        fraction = win_fraction_matrix(values, ["cell"]).fraction.to_numpy()
        off = ~np.eye(3, dtype=bool)
        np.testing.assert_allclose((fraction + fraction.T)[off], 1.0)

    def test_duplicates_rejected(self) -> None:
        values = pd.DataFrame({"method": ["a", "a"], "cell": [1, 1], "value": [1.0, 2.0]})
        with pytest.raises(ValueError, match="one row per method and cell"):
            win_fraction_matrix(values, ["cell"])
