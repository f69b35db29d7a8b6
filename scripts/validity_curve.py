"""The EDM checkpoint's validity against training molecules seen, and when it would reach a target.

Reads ``casbo-bench evaluate-edm`` result files (one per checkpoint, all of the same sampler
and sample count) and the manifest of the training run, and prints a Markdown report:

- one row per checkpoint: step, molecules seen, validity by EDM's rule (``validity_table``:
  every atom's valence as in EDM's bond-order table) with its 95% Wilson interval, and
  RDKit validity;
- the fit of a power law to the invalid share, ``1 - v(m) = a m^(-b)`` (least squares of
  ``log(1 - v)`` on ``log m``), and the molecules ``m*`` where it reaches ``1 - target``;
- the training throughput of each slice in the manifest (molecules per hour, with its
  threads), and the hours the remaining ``m* - m_last`` molecules would take at the median
  (no fit when the last checkpoint has reached the target already).

With three or four points the fit is a projection, not a prediction: the report says so.

    python scripts/validity_curve.py quality/*.json --manifest models/edm_qm9_heavy/manifest.json

Exit status: 0, or 2 when a file is unreadable or the results differ in sampler or count.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from scipy.stats import binomtest


class InputError(Exception):
    """A file that is not what the report reads (the message names it)."""


def _read(path: Path) -> dict[str, Any]:
    try:
        result: dict[str, Any] = json.loads(path.read_text())
        result["checkpoint"]["molecules_seen"], result["samples"]["n_valid_table"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise InputError(f"{path}: not an evaluate-edm result ({error!r})") from None
    return result


def _training_rates(path: Path) -> list[tuple[float, dict[str, Any]]]:
    """(molecules per hour, slice) of every finished slice in a training manifest."""
    try:
        manifest = json.loads(path.read_text())
        batch = manifest["config"]["batch_size"]
        return [
            (batch * (part["end_step"] - part["start_step"]) / part["seconds"] * 3600, part)
            for part in manifest["training"]["slices"]
            if part.get("seconds") and part.get("end_step") is not None
        ]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise InputError(f"{path}: not a training manifest ({error!r})") from None


def power_law(points: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """``(a, b)`` of ``1 - v = a m^(-b)`` fitted by least squares in log-log to
    ``(m, v)`` points (at least two, each with ``0 < v < 1``)."""
    xs = [math.log(m) for m, _ in points]
    ys = [math.log(1.0 - v) for _, v in points]
    x_mean, y_mean = statistics.fmean(xs), statistics.fmean(ys)
    slope = sum((x - x_mean) * (y - y_mean) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - x_mean) ** 2 for x in xs
    )
    return math.exp(y_mean - slope * x_mean), -slope


def main(argv: Sequence[str] | None = None) -> int:
    """Print the report; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", type=Path, metavar="RESULT")
    parser.add_argument("--manifest", type=Path, required=True, help="the training manifest")
    parser.add_argument("--target", type=float, default=0.95, help="validity to reach")
    arguments = parser.parse_args(argv)
    try:
        results = sorted(
            (_read(path) | {"file": str(path)} for path in arguments.results),
            key=lambda result: result["checkpoint"]["molecules_seen"],
        )
        rates = _training_rates(arguments.manifest)
    except InputError as error:
        print(f"validity_curve.py: error: {error}", file=sys.stderr)
        return 2
    samplers = {json.dumps({**r["sampler"], "seconds": None}, sort_keys=True) for r in results}
    if len(samplers) != 1:
        print("validity_curve.py: error: the results differ in sampler or count", file=sys.stderr)
        return 2
    sampler = results[0]["sampler"]
    lines = [
        f"Sampler: {sampler['steps']} of {sampler['timesteps']} steps, "
        f"{sampler['n_samples']} samples, seed {sampler['seed']}.",
        "",
        "| step | molecules seen | validity (EDM's rule) | 95% interval | RDKit validity | file |",
        "|---|---|---|---|---|---|",
    ]
    points, low_ends = [], []
    for result in results:
        samples, checkpoint = result["samples"], result["checkpoint"]
        n, k = samples["n_molecules"], samples["n_valid_table"]
        interval = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        points.append((float(checkpoint["molecules_seen"]), k / n))
        low_ends.append(interval.low)
        lines.append(
            f"| {checkpoint['step']:,} | {checkpoint['molecules_seen']:,} | {k / n:.3f} | "
            f"{interval.low:.3f}-{interval.high:.3f} | {samples['validity']:.3f} | "
            f"{result['file']} |"
        )
    lines += ["", "| slice started | threads | device | molecules per hour |", "|---|---|---|---|"]
    for rate, part in rates:
        # Older slices name the threads "threads" and the device inside "hardware".
        hardware = part.get("hardware", {})
        threads = hardware.get("torch_threads", hardware.get("threads"))
        device = part.get("device", hardware.get("device"))
        lines.append(f"| {part['started']} | {threads} | {device} | {rate:,.0f} |")
    usable = [(m, v) for m, v in points if 0.0 < v < 1.0]
    if points[-1][1] >= arguments.target:
        lines += [
            "",
            f"Validity {arguments.target} is reached at the last checkpoint "
            f"({points[-1][1]:.3f} after {points[-1][0]:,.0f} molecules seen; the lower end "
            f"of its 95% interval, {low_ends[-1]:.3f}, is "
            f"{'above' if low_ends[-1] >= arguments.target else 'below'} it): no projection.",
        ]
    elif len(usable) < 2:
        lines += ["", "Fewer than two points with 0 < v < 1: no projection."]
    else:
        a, b = power_law(usable)
        needed = (a / (1.0 - arguments.target)) ** (1.0 / b) if b > 0 else math.inf
        last = points[-1][0]
        median = statistics.median(rate for rate, _ in rates) if rates else math.nan
        hours = max(0.0, needed - last) / median if median > 0 else math.inf
        lines += [
            "",
            f"Power law of the invalid share: 1 - v = {a:.3g} m^(-{b:.3f}) "
            f"({len(usable)} points). Validity {arguments.target} at m* = {needed:,.0f} "
            f"molecules seen, {max(0.0, needed - last):,.0f} after the last checkpoint: "
            f"{hours:.1f} hours at the median slice rate ({median:,.0f} molecules per hour). "
            f"A projection from {len(usable)} points, not a prediction.",
        ]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
