"""Molecule rollouts per second by batch size, threads and sampler precision.

A rollout of the molecule problem (``mol-qed``: n = 9 heavy atoms, the respaced sampler of
S = 20 steps by default) is ``S + 1`` denoiser passes (sampling), then RDKit's rebuild of the
molecule and its score (:meth:`MoleculeProblem.rollout_details`). For each thread count,
sampler precision (float32, the stored model's, and float64) and batch size B, the table
gives:

- sampling: rollouts per second of wall time of the problem's sampler alone on B noises
  (``problem.sampler(noise)``, the call a rollout makes), and its CPU milliseconds per
  rollout (all threads; on a shared machine the steadier number);
- rebuild + score: milliseconds per rollout of the rest of a rollout on the same molecules
  (rebuild, validity, score, the details' text), single-threaded RDKit;
- sampling + rebuild + score: rollouts per second of the two together;
- with ``--ref REF``: the sampling rate and CPU time of the package's ``egnn.py`` and
  ``diffusion.py`` at git ref REF on the same noises and weights, measured beside today's
  call by call (at least two calls each per batch size, each going first once, so a change
  of load hits both), the speed-ups today / REF, and how far today's molecules are from
  REF's (largest position difference, rollouts whose atom types differ).

Small batches are repeated until ``--min-rollouts`` rollouts are timed. Each thread count
runs in a child process of its own, with ``OMP_NUM_THREADS``, ``MKL_NUM_THREADS`` and
``torch.set_num_threads`` set to it, and ``OMP_WAIT_POLICY=PASSIVE`` (``--wait-policy``):
spinning OpenMP threads slow every job on a machine whose cores are all busy (the
workflow's jobs run one thread each).

The second table (``--tolerance M``, default 500; 0 skips it) samples the same M N(0, I)
noises in float32 and float64 (one thread, today's code) and compares the rollouts: the
share whose rebuilt molecule (canonical SMILES; invalid counts as its own value) differs,
whose atom types differ, the largest and median position difference (Angstrom) and the
score difference.

Run from the repository root::

    .venv/bin/python benchmarks/rollouts.py
    .venv/bin/python benchmarks/rollouts.py --threads 1 --dtypes float32 --ref HEAD~1
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from benchkit import machine_line, module_at

if TYPE_CHECKING:
    from casbo_bench.molecules.problem import MoleculeProblem

ROOT = Path(__file__).resolve().parents[1]
BATCHES = (1, 8, 32, 64, 128, 256)
PROBLEM = "mol-qed"


@dataclass(frozen=True)
class Row:
    """One (threads, dtype, batch) measurement; times in seconds per rollout."""

    threads: int
    dtype: str
    batch: int
    rollouts: int
    sampling_wall: float
    sampling_cpu: float
    rebuild_score: float
    before_wall: float | None
    before_cpu: float | None
    before_shift: float | None
    before_types_differ: int | None


def load_before(ref: str) -> tuple[ModuleType, ModuleType]:
    """``egnn`` and ``diffusion`` of ``casbo_bench.molecules`` as they are at git ref
    ``ref``, under names of their own (the old diffusion imports the old egnn)."""
    egnn = module_at(ref, "src/casbo_bench/molecules/egnn.py", "rollouts_before_egnn")
    diffusion = module_at(
        ref,
        "src/casbo_bench/molecules/diffusion.py",
        "rollouts_before_diffusion",
        renames={"casbo_bench.molecules.egnn": "rollouts_before_egnn"},
    )
    return egnn, diffusion


def timed(call: Callable[[], Any]) -> tuple[Any, float, float]:
    """``call()``, and its wall and process CPU seconds."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = call()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def molecule_problem(dim: int, n_steps: int, dtype: str, name: str = PROBLEM) -> MoleculeProblem:
    """The molecule task ``name`` with its sampler in ``dtype``."""
    from casbo_bench.molecules.problem import MoleculeProblem
    from casbo_bench.problems import make_problem

    problem = make_problem(name, dim, n_steps, sampler_dtype=dtype)
    assert isinstance(problem, MoleculeProblem)
    return problem


def child(args: argparse.Namespace) -> None:
    """Measure every dtype and batch at ``args.child_threads`` threads; print JSON rows."""
    import numpy as np
    import torch

    from casbo_bench.molecules.checkpoint import edm_folder, load_sampler
    from casbo_bench.molecules.tasks import task_size

    torch.set_num_threads(args.child_threads)
    dim, n_steps = task_size(args.n_atoms, args.steps)
    noise = np.random.default_rng(args.seed).standard_normal((max(args.batches), n_steps, dim))
    before_module = load_before(args.ref)[1] if args.ref else None
    for dtype in args.dtypes:
        problem = molecule_problem(dim, n_steps, dtype)
        sampler = problem.sampler
        before = None
        if before_module is not None:
            model, _ = load_sampler(edm_folder())
            old = before_module.build_diffusion(model.model_options, seed=0)
            old.load_state_dict(model.diffusion.state_dict())
            old.eval().requires_grad_(False).denoiser.to(getattr(torch, dtype))
            before = before_module.FixedSizeSampler(old, args.n_atoms, args.steps)
        sampler(noise[:2])  # warm-up: first calls load kernels
        if before is not None:
            before(noise[:2])
        for batch in args.batches:
            repeats = math.ceil(args.min_rollouts / batch)
            if before is not None:
                repeats = max(repeats, 2)  # each goes first once
            after_wall = after_cpu = before_wall = before_cpu = rebuild = shift = 0.0
            types_differ = 0
            for repeat in range(repeats):
                chunk = noise[:batch]
                calls: list[tuple[str, Any]] = [("after", sampler)]
                if before is not None:
                    calls.insert(repeat % 2, ("before", before))
                for label, call in calls:
                    result, wall, cpu = timed(partial(call, chunk))
                    if label == "after":
                        samples = result
                        after_wall, after_cpu = after_wall + wall, after_cpu + cpu
                    else:
                        before_wall, before_cpu = before_wall + wall, before_cpu + cpu
                        old_samples = result
                if before is not None:
                    gap = (samples.positions - old_samples.positions).abs().max().item()
                    shift = max(shift, gap)
                    differ = (samples.atom_types != old_samples.atom_types).any(dim=-1)
                    types_differ += int(differ.sum())
                # What rollout_details does after sampling, on the same molecules.
                rebuild += timed(partial(problem._details, samples))[1]
            rollouts = repeats * batch
            row = Row(
                threads=args.child_threads,
                dtype=dtype,
                batch=batch,
                rollouts=rollouts,
                sampling_wall=after_wall / rollouts,
                sampling_cpu=after_cpu / rollouts,
                rebuild_score=rebuild / rollouts,
                before_wall=before_wall / rollouts if before is not None else None,
                before_cpu=before_cpu / rollouts if before is not None else None,
                before_shift=shift if before is not None else None,
                before_types_differ=types_differ if before is not None else None,
            )
            print(json.dumps(asdict(row)), flush=True)


def tolerance(args: argparse.Namespace) -> dict[str, float]:
    """float32 against float64 on ``args.tolerance`` noises (one thread, today's code)."""
    import numpy as np
    import torch

    from casbo_bench.molecules.tasks import task_size

    torch.set_num_threads(1)
    dim, n_steps = task_size(args.n_atoms, args.steps)
    noise = np.random.default_rng(args.seed + 1).standard_normal((args.tolerance, n_steps, dim))
    # A task whose score reads the positions (the property predictor's alpha), beside QED's.
    predictor = molecule_problem(dim, n_steps, "float32", "mol-alpha")
    results = {}
    for dtype in ("float32", "float64"):
        problem = molecule_problem(dim, n_steps, dtype)
        samples = problem.sampler(noise)
        _, details = problem._details(samples)
        results[dtype] = (samples, details, predictor._details(samples)[1]["score"])
    (low, low_details, low_alpha) = results["float32"]
    (high, high_details, high_alpha) = results["float64"]
    alpha_gap = np.abs(low_alpha - high_alpha)
    shift = (low.positions.double() - high.positions).norm(dim=-1).amax(dim=-1).numpy()
    types_differ = (low.atom_types != high.atom_types).any(dim=-1).numpy()
    smiles_differ = np.array(
        [a != b for a, b in zip(low_details["smiles"], high_details["smiles"], strict=True)]
    )
    score_gap = np.abs(low_details["score"] - high_details["score"])
    return {
        "rollouts": float(args.tolerance),
        "smiles_differ": float(smiles_differ.mean()),
        "types_differ": float(types_differ.mean()),
        "valid_float32": float(low_details["valid"].mean()),
        "valid_float64": float(high_details["valid"].mean()),
        "max_shift": float(shift.max()),
        "median_shift": float(np.median(shift)),
        "p99_shift": float(np.quantile(shift, 0.99)),
        "max_score_gap": float(score_gap.max()),
        "score_gap_same_smiles": float(score_gap[~smiles_differ].max(initial=0.0)),
        "mean_score_float32": float(low_details["score"].mean()),
        "mean_score_float64": float(high_details["score"].mean()),
        "score_differs": float((score_gap > 1e-6).mean()),
        "max_alpha_gap": float(alpha_gap.max()),
        "median_alpha_gap": float(np.median(alpha_gap)),
    }


def run_children(args: argparse.Namespace, argv: list[str]) -> list[Row]:
    """One child per thread count; their rows."""
    rows = []
    for threads in args.threads:
        environment = {
            **os.environ,
            "OMP_NUM_THREADS": str(threads),
            "MKL_NUM_THREADS": str(threads),
            "OPENBLAS_NUM_THREADS": str(threads),
            "PYTHONPATH": str(ROOT / "src"),
        }
        if args.wait_policy != "default":
            environment["OMP_WAIT_POLICY"] = args.wait_policy
        command = [sys.executable, __file__, *argv, "--child-threads", str(threads)]
        output = subprocess.run(
            command, env=environment, capture_output=True, text=True, check=False
        )
        if output.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{output.stderr}")
        rows += [Row(**json.loads(line)) for line in output.stdout.splitlines() if line]
        print(f"  {threads} thread(s) done; {machine_line()}", flush=True)
    return rows


def table(rows: list[Row]) -> str:
    """The Markdown table of :func:`child`'s rows."""
    with_before = any(row.before_wall is not None for row in rows)
    head = (
        "| threads | dtype | B | rollouts timed | sampling rollouts/s | sampling CPU ms/rollout "
        "| rebuild + score ms/rollout | sampling + rebuild + score rollouts/s |"
    )
    if with_before:
        head += (
            " before: sampling rollouts/s | before: sampling CPU ms/rollout | speed-up (wall) "
            "| speed-up (CPU) | max abs(after - before) A | rollouts whose types differ |"
        )
    lines = [head, "|" + "---:|" * head.count(" |")]
    for row in rows:
        full = 1.0 / (row.sampling_wall + row.rebuild_score)
        cells = [
            str(row.threads),
            row.dtype,
            str(row.batch),
            str(row.rollouts),
            f"{1.0 / row.sampling_wall:.1f}",
            f"{1e3 * row.sampling_cpu:.1f}",
            f"{1e3 * row.rebuild_score:.2f}",
            f"{full:.1f}",
        ]
        if with_before:
            if row.before_wall is None or row.before_cpu is None:
                cells += [""] * 6
            else:
                cells += [
                    f"{1.0 / row.before_wall:.1f}",
                    f"{1e3 * row.before_cpu:.1f}",
                    f"{row.before_wall / row.sampling_wall:.2f}",
                    f"{row.before_cpu / row.sampling_cpu:.2f}",
                    f"{row.before_shift:.1e}",
                    str(row.before_types_differ),
                ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def tolerance_table(numbers: dict[str, float]) -> str:
    """The Markdown table of :func:`tolerance`."""
    return "\n".join(
        [
            "| rollouts | SMILES differ | atom types differ | valid float32 | valid float64 "
            "| max shift A | p99 shift A | median shift A | max score gap "
            "| max score gap, same SMILES | score differs (> 1e-6) | mean score float32 "
            "| mean score float64 | mol-alpha: max score gap | mol-alpha: median score gap |",
            "|" + "---:|" * 15,
            f"| {numbers['rollouts']:.0f} | {numbers['smiles_differ']:.1%} "
            f"| {numbers['types_differ']:.1%} | {numbers['valid_float32']:.1%} "
            f"| {numbers['valid_float64']:.1%} | {numbers['max_shift']:.2e} "
            f"| {numbers['p99_shift']:.2e} | {numbers['median_shift']:.2e} "
            f"| {numbers['max_score_gap']:.3g} | {numbers['score_gap_same_smiles']:.2e} "
            f"| {numbers['score_differs']:.1%} | {numbers['mean_score_float32']:.4f} "
            f"| {numbers['mean_score_float64']:.4f} | {numbers['max_alpha_gap']:.2e} "
            f"| {numbers['median_alpha_gap']:.2e} |",
        ]
    )


def main(argv: list[str] | None = None) -> None:
    """Parse the command line; as the parent, run the children and print both tables."""
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, nargs="+", default=list(BATCHES))
    parser.add_argument("--threads", type=int, nargs="*", default=[1, 2], help="('': none)")
    parser.add_argument(
        "--dtypes", nargs="+", choices=("float32", "float64"), default=["float32", "float64"]
    )
    parser.add_argument("--n-atoms", type=int, default=9)
    parser.add_argument("--steps", type=int, default=20, help="S, the sampler's steps")
    parser.add_argument(
        "--min-rollouts", type=int, default=32, help="rollouts timed at least per batch size"
    )
    parser.add_argument("--ref", help="git ref whose egnn.py and diffusion.py run beside today's")
    parser.add_argument(
        "--tolerance", type=int, default=500, help="noises of the float32 check (0: none)"
    )
    parser.add_argument(
        "--wait-policy",
        choices=("PASSIVE", "ACTIVE", "default"),
        default="PASSIVE",
        help="OMP_WAIT_POLICY of the children ('default': leave it unset)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child-threads", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_threads is not None:
        child(args)
        return
    started = time.perf_counter()
    print(machine_line(), flush=True)
    print(
        f"{PROBLEM}: n = {args.n_atoms} atoms, S = {args.steps} steps; OMP_WAIT_POLICY "
        f"{args.wait_policy}; after: this checkout"
        + (f", before: egnn.py and diffusion.py at {args.ref}" if args.ref else ""),
        flush=True,
    )
    rows = run_children(args, argv) if args.threads else []
    numbers = tolerance(args) if args.tolerance > 0 else None
    print(f"total {time.perf_counter() - started:.0f} s; {machine_line()}")
    if rows:
        print(table(rows))
    if numbers is not None:
        print(
            f"float32 against float64 on {args.tolerance} N(0, I) noises (seed {args.seed + 1}), "
            "one thread; shift: the largest atom displacement of a rollout; score: mol-qed's "
            "(QED), and mol-alpha's (-|predicted alpha - target|, bohr^3) on the same molecules"
        )
        print(tolerance_table(numbers))


if __name__ == "__main__":
    main()
