"""The memory model of one `casbo-bench run` job, stated so a config is sized before it runs.

A job holds, at its peak, the process itself and the arrays of one repetition (repetitions
run one after the other). With D = K d the numbers searched and n the budget, in float64
(8 bytes each):

- the problem: K + 1 rotations or transition matrices of d x d: ``(K + 1) d^2``;
- the optimizer: at most six D x D matrices (a full covariance over everything searched,
  its factor, inverse and eigenvectors, and temporaries of the same size: CMA-ES over the
  joint noise, xNES, CASBO's blocks are fewer): ``6 D^2``; TuRBO's candidate set of 5,000
  points: ``5000 D``;
- the trace: about 40 numbers per evaluation of every repetition of the job, kept until it
  is written: ``40 n r`` for r repetitions; the fresh samples' noise: ``4 m D``.

The process (Python with numpy, pandas and pandera imported) is :data:`PROCESS_MB`, or
:data:`TORCH_PROCESS_MB` for a job that runs torch code (:func:`job_uses_torch`). The model
bounds every optimizer of the package at its default settings (options such as a larger
population are not modelled; TuRBO's Gaussian-process matrices are not either, so its jobs
ask for the workflow's floor of 2,000 MB). The workflow asks the scheduler for
``max(rule's floor, model)`` per job and refuses a config whose job would need more than its
``max_job_mem_mb``; ``casbo-bench run`` refuses a job that would need more than the
machine has.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import math
import os

PROCESS_MB = 200
"""Resident size of a job's Python process with its imports, before any array, when it runs
no torch code (measured on this project's machine: 185 MB for the xnes jobs of the default run,
arrays and traces included; docs/plans/default.md, column "measured peak MB")."""

TORCH_PROCESS_MB = 450
"""The same for a job that runs torch code (measured likewise: 464 to 509 MB for the rows
whose jobs run torch code, every CASBO variant and every method's molecule job with the
diffusion model loaded, arrays and traces included)."""

BYTES_PER_NUMBER = 8

MMAP_THRESHOLD_BYTES = 2**20
"""Blocks of at least this size are mapped and unmapped one by one (see
:func:`bound_heap_growth`)."""

_M_MMAP_THRESHOLD = -3
"""glibc's ``mallopt`` parameter number of ``M_MMAP_THRESHOLD`` (malloc.h)."""


def job_memory_mb(
    d: int, K: int, budget: int, fresh_samples: int, uses_torch: bool, repetitions: int = 1
) -> int:
    """Peak memory of one job of ``repetitions`` seeds in MB by the model above, rounded up."""
    searched = K * d
    numbers = (K + 1) * d * d + 6 * searched**2 + 5000 * searched
    numbers += 40 * budget * repetitions + 4 * fresh_samples * searched
    process = TORCH_PROCESS_MB if uses_torch else PROCESS_MB
    return process + math.ceil(numbers * BYTES_PER_NUMBER / 2**20)


def job_uses_torch(method: str, problem: str) -> bool:
    """Whether a job of optimizer ``method`` on ``problem`` runs torch code: the optimizer's
    file declares ``uses_torch = True``, or the problem's family does (the molecule tasks'
    sampler and predictor). Nothing heavy is imported."""
    from casbo_bench import optimizers, problems

    return method in optimizers.torch_optimizers() or problems.family_uses_torch(problem)


def machine_memory_mb() -> int:
    """The physical memory of this machine in MB (where the OS reports it; else no limit)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20)
    except (ValueError, OSError, AttributeError):
        return 2**62


@functools.cache
def bound_heap_growth() -> bool:
    """Serve every block of at least 1 MiB by its own mapping (glibc only; idempotent).

    glibc raises its mapping threshold after a large block is freed, up to 32 MiB, so the
    ``n x n`` posterior matrices a GP optimizer allocates and frees at every batch (2,000
    candidates: 32 MB each) come from the heap afterwards, and the heap fragments and
    grows with every batch. Measured on this project's machine (TuRBO, d = 2, 50
    evaluations): 1,425 MB peak without the bound, 792 MB with it. Called by the
    optimizers that use torch; returns whether the bound is in force.
    """
    library = ctypes.util.find_library("c")
    if library is None:
        return False
    try:
        mallopt = ctypes.CDLL(library).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
