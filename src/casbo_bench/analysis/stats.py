"""Statistics over repetition seeds: bootstrap intervals, tests against a reference, Holm.

A benchmark *cell* is one method on one problem at one (d, K, scoring); it holds one final
value per repetition seed. Every method meets the same problem instance (and the same
common random numbers) at the same seed, so two methods' values at equal seeds are *paired*:
:func:`compare_to_reference` then uses the Wilcoxon signed-rank test on the per-seed
differences, and falls back to the Mann-Whitney rank-sum test only when the two seed sets
differ (a partial run), saying which test it used.

Few seeds cannot give small p-values. With n paired seeds the exact two-sided Wilcoxon test
has 2^n equally likely sign patterns under the null, so its smallest p-value is 2 / 2^n:
n = 3 gives 0.25, n = 5 gives 0.0625, and only n >= 6 can reach 0.05 (before any correction
for multiple comparisons). Likewise the exact rank-sum test with samples of sizes n and m
cannot go below 2 / C(n + m, n). :class:`Comparison` carries that floor and the sample sizes,
so a table never hides why nothing is significant.

Losses are minimized throughout: a *win* of a method over the reference is a lower value.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import comb

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from casbo_bench.schemas.vocabulary import MANN_WHITNEY, WILCOXON, Verdict

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class ConfidenceInterval:
    """A two-sided interval ``[low, high]`` at level ``confidence``."""

    low: float
    high: float
    confidence: float


@dataclass(frozen=True)
class Comparison:
    """A method's final values against the reference's over repetition seeds.

    Attributes:
        test: :data:`WILCOXON` (same seeds, paired) or :data:`MANN_WHITNEY` (otherwise).
        n_method: how many seeds the method has.
        n_reference: how many seeds the reference has.
        n_pairs: the pairs compared: n when paired; n_method * n_reference for the rank-sum
            test, which compares every value of one sample with every value of the other.
        statistic: Wilcoxon's min(R+, R-) over the non-zero differences, or the
            Mann-Whitney U of the method's sample (pairs where the method is larger, ties
            counting 1/2).
        p_value: the two-sided p-value (exact for small samples without ties, scipy's
            normal approximation otherwise).
        min_attainable_p: the smallest p-value the exact two-sided test can give with these
            sample sizes: 2 / 2^n (n non-zero differences) or 2 / C(n + m, n), capped at 1.
        median_difference: the median of the paired differences method - reference, or for
            unpaired samples the median of all pairwise differences (the Hodges-Lehmann
            shift); negative means the method reaches lower losses.
        win_fraction: the fraction of pairs in which the method's value is lower than the
            reference's, ties counting 1/2.
    """

    test: str
    n_method: int
    n_reference: int
    n_pairs: int
    statistic: float
    p_value: float
    min_attainable_p: float
    median_difference: float
    win_fraction: float


@dataclass(frozen=True)
class WinMatrix:
    """Method-versus-method win fractions over shared benchmark cells.

    Attributes:
        fraction: a ``M x M`` frame (rows and columns indexed by method): entry (a, b) is
            the fraction of cells holding both a and b in which a's value is lower than b's,
            ties counting 1/2; NaN on the diagonal and where no cell holds both.
        n_cells: a ``M x M`` frame of the number of cells each fraction is taken over.
    """

    fraction: pd.DataFrame
    n_cells: pd.DataFrame


def _check_confidence(confidence: float, n_resamples: int) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1; got {confidence}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1; got {n_resamples}")


def bootstrap_median_band(
    values: ArrayLike,
    rng: np.random.Generator,
    confidence: float = 0.95,
    n_resamples: int = 2000,
) -> tuple[FloatArray, FloatArray]:
    """Percentile-bootstrap confidence band of the column-wise median over rows.

    Rows (repetition seeds) are resampled with replacement, the median of every column is
    taken in each of ``n_resamples`` resamples, and the band is the ``(1 - confidence) / 2``
    and ``(1 + confidence) / 2`` quantiles of those medians.

    Args:
        values: a ``n x m`` array, one row per seed (e.g. a convergence curve on a grid).
        rng: the generator that draws the resamples (the band is a function of its state).
        confidence: the level of the band.
        n_resamples: the number of bootstrap resamples.

    Returns:
        ``(low, high)``, two ``m`` arrays.
    """
    _check_confidence(confidence, n_resamples)
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] == 0:
        raise ValueError(
            f"values must be a non-empty n x m array (one row per seed); got shape {array.shape}"
        )
    if not np.isfinite(array).all():
        raise ValueError("values must be finite; drop missing seeds before bootstrapping")
    n = array.shape[0]
    rows = rng.integers(0, n, size=(n_resamples, n))
    # The median of each resample and column as np.median takes it (the middle order
    # statistic, or the mean of the two), from one sort along a contiguous last axis:
    # half the time of np.median over the middle axis of ``array[rows]``.
    ordered = np.sort(array.T[:, rows], axis=-1)  # m x n_resamples x n
    middle = ordered[..., n // 2]
    medians = (middle if n % 2 else (ordered[..., n // 2 - 1] + middle) / 2.0).T
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(medians, [tail, 1.0 - tail], axis=0)
    return low, high


def bootstrap_median_ci(
    values: ArrayLike,
    rng: np.random.Generator,
    confidence: float = 0.95,
    n_resamples: int = 2000,
) -> ConfidenceInterval:
    """Percentile-bootstrap confidence interval of the median of ``values`` (a ``n`` array).

    >>> ci = bootstrap_median_ci([1.0, 2.0, 3.0, 4.0], np.random.default_rng(0))
    >>> 1.0 <= ci.low <= ci.high <= 4.0
    True
    """
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"values must be a 1-d array; got shape {array.shape}")
    low, high = bootstrap_median_band(array[:, None], rng, confidence, n_resamples)
    return ConfidenceInterval(float(low[0]), float(high[0]), confidence)


def holm_adjust(p_values: ArrayLike) -> FloatArray:
    """Holm's step-down adjusted p-values, in the order given.

    With the m finite p-values sorted as p_(1) <= ... <= p_(m):

        adjusted_(i) = min(1, max_{j <= i} (m - j + 1) p_(j))

    Rejecting where ``adjusted < alpha`` controls the family-wise error rate at alpha.
    NaN entries (comparisons that could not be made) are not part of the family and stay
    NaN.

    >>> holm_adjust([0.01, 0.04, 0.03]).round(4).tolist()
    [0.03, 0.06, 0.06]
    """
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"p_values must be a 1-d array; got shape {p.shape}")
    finite = np.isfinite(p)
    if ((p[finite] < 0.0) | (p[finite] > 1.0)).any():
        raise ValueError(f"p-values must lie in [0, 1]; got {p[finite].tolist()}")
    adjusted = np.full_like(p, np.nan)
    family = np.flatnonzero(finite)
    order = family[np.argsort(p[family], kind="stable")]
    m = order.size
    scaled = (m - np.arange(m)) * p[order]
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    return adjusted


def min_attainable_wilcoxon(n: int) -> float:
    """The smallest p-value the exact two-sided signed-rank test can give on ``n`` non-zero
    paired differences: 2 / 2^n, capped at 1."""
    return min(1.0, 2.0 / 2.0**n) if n > 0 else 1.0


def _min_attainable_mann_whitney(n: int, m: int) -> float:
    return min(1.0, 2.0 / comb(n + m, n))


def _win_fraction(differences: FloatArray) -> float:
    return float(np.mean(differences < 0.0) + 0.5 * np.mean(differences == 0.0))


def _as_seeded(values: ArrayLike, seeds: ArrayLike, what: str) -> pd.Series:
    series = pd.Series(
        np.asarray(values, dtype=np.float64), index=np.asarray(seeds, dtype=np.int64)
    )
    if series.empty:
        raise ValueError(f"the {what} has no values to compare")
    if series.index.has_duplicates:
        raise ValueError(
            f"the {what} has repeated seeds {sorted(set(series.index[series.index.duplicated()]))}"
            f"; give one final value per seed"
        )
    if np.isnan(series.to_numpy()).any() or (series.to_numpy() == -np.inf).any():
        raise ValueError(
            f"the {what} has NaN or -inf values; give numbers, or +inf for a failed run"
        )
    return series.sort_index()


def paired_differences(values: ArrayLike, reference: ArrayLike) -> FloatArray:
    """``values - reference`` per seed, with two equal infinities a tie (0), not NaN.

    A best-so-far is +inf until a run's first successful evaluation (failed evaluations
    never count), so at an early budget both runs of a seed may still be at +inf: neither
    is ahead. One infinite side gives +-inf, which the rank tests order as the largest
    difference.

    >>> paired_differences([np.inf, 1.0, np.inf], [np.inf, 2.0, 3.0]).tolist()
    [0.0, -1.0, inf]
    """
    values = np.asarray(values, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    tied = np.isinf(values) & (values == reference)
    return np.where(tied, 0.0, values - np.where(tied, 0.0, reference))


def compare_to_reference(
    values: ArrayLike,
    seeds: ArrayLike,
    reference_values: ArrayLike,
    reference_seeds: ArrayLike,
) -> Comparison:
    """Two-sided test of a method's final values against the reference's, with effect sizes.

    Paired (Wilcoxon signed-rank on the differences method - reference, zero differences
    dropped as in Wilcoxon's original test) when both have exactly the same seeds, which the
    benchmark guarantees for complete runs; Mann-Whitney rank-sum otherwise. When every
    paired difference is zero the two methods are indistinguishable on this data: the
    statistic is 0 and p = 1.

    Args:
        values: a ``n`` array of the method's final values.
        seeds: a ``n`` array of their repetition seeds.
        reference_values: a ``m`` array of the reference's final values.
        reference_seeds: a ``m`` array of their repetition seeds.

    >>> c = compare_to_reference([1.0, 2.0, 3.0], [0, 1, 2], [2.0, 3.0, 5.0], [0, 1, 2])
    >>> c.test, c.p_value, c.min_attainable_p, c.win_fraction
    ('wilcoxon signed-rank', 0.25, 0.25, 1.0)
    """
    method = _as_seeded(values, seeds, "method")
    reference = _as_seeded(reference_values, reference_seeds, "reference")
    if method.index.equals(reference.index):
        differences = paired_differences(method.to_numpy(), reference.to_numpy())
        nonzero = int(np.count_nonzero(differences))
        if nonzero == 0:
            statistic, p_value = 0.0, 1.0
        else:
            result = stats.wilcoxon(differences, alternative="two-sided")
            statistic, p_value = float(result.statistic), float(result.pvalue)
        return Comparison(
            test=WILCOXON,
            n_method=method.size,
            n_reference=reference.size,
            n_pairs=differences.size,
            statistic=statistic,
            p_value=p_value,
            min_attainable_p=min_attainable_wilcoxon(nonzero),
            median_difference=float(np.median(differences)),
            win_fraction=_win_fraction(differences),
        )
    result = stats.mannwhitneyu(method.to_numpy(), reference.to_numpy(), alternative="two-sided")
    pairwise = (method.to_numpy()[:, None] - reference.to_numpy()[None, :]).ravel()
    return Comparison(
        test=MANN_WHITNEY,
        n_method=method.size,
        n_reference=reference.size,
        n_pairs=pairwise.size,
        statistic=float(result.statistic),
        p_value=float(result.pvalue),
        min_attainable_p=_min_attainable_mann_whitney(method.size, reference.size),
        median_difference=float(np.median(pairwise)),
        win_fraction=_win_fraction(pairwise),
    )


def verdict(
    adjusted_p: float, median_difference: float, win_fraction: float, alpha: float = 0.05
) -> Verdict:
    """ "better" / "worse" (than the reference) when ``adjusted_p < alpha``, else no verdict.

    The direction is the sign of the median difference (method - reference; negative is
    better), or where that is exactly zero, which side of 1/2 the win fraction lies on.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie strictly between 0 and 1; got {alpha}")
    if not adjusted_p < alpha:
        return "no significant difference"
    if median_difference < 0.0 or (median_difference == 0.0 and win_fraction > 0.5):
        return "better"
    if median_difference > 0.0 or (median_difference == 0.0 and win_fraction < 0.5):
        return "worse"
    return "no significant difference"


def win_fraction_matrix(
    values: pd.DataFrame, cell_keys: list[str], methods: list[str] | None = None
) -> WinMatrix:
    """Pairwise win fractions of methods over the cells they share.

    Args:
        values: a long frame with a ``method`` column, the ``cell_keys`` columns and a
            ``value`` column (lower is better; +inf, a failed run, loses to every number and
            ties with +inf), one row per method and cell.
        cell_keys: the columns that name a cell (e.g. problem, d, K, scoring, seed).
        methods: the row/column order; by default the sorted method names.

    Returns:
        A :class:`WinMatrix`; entry (a, b) of ``fraction`` is
        (#{cells: a < b} + #{cells: a = b} / 2) / #{cells holding both}.
    """
    missing = {"method", "value", *cell_keys} - set(values.columns)
    if missing:
        raise ValueError(f"values lacks column(s) {sorted(missing)}")
    if values.duplicated(["method", *cell_keys]).any():
        raise ValueError("values must hold one row per method and cell; found duplicates")
    order = sorted(values["method"].unique()) if methods is None else list(methods)
    wide = values.pivot(index=cell_keys, columns="method", values="value").reindex(columns=order)
    table = wide.to_numpy(dtype=np.float64)
    # +inf is a value (a failed run, judged worse than any other; two of them tie)
    present = ~np.isnan(table)
    row = table[:, :, None]
    column = table[:, None, :]
    both = present[:, :, None] & present[:, None, :]
    wins = ((row < column) & both).sum(axis=0) + 0.5 * ((row == column) & both).sum(axis=0)
    n_cells = both.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        fraction = np.where(n_cells > 0, wins / n_cells, np.nan)
    np.fill_diagonal(fraction, np.nan)
    return WinMatrix(
        fraction=pd.DataFrame(fraction, index=order, columns=order),
        n_cells=pd.DataFrame(n_cells.astype(np.int64), index=order, columns=order),
    )
