"""The memory model of a job and the heap bound of the torch optimizers."""

from __future__ import annotations

import platform

import pytest

from casbo_bench.memory import (
    PROCESS_MB,
    TORCH_PROCESS_MB,
    bound_heap_growth,
    job_memory_mb,
    job_uses_torch,
)


def test_the_model_grows_with_every_size_it_names() -> None:
    base = job_memory_mb(d=200, K=1, budget=300, fresh_samples=64, uses_torch=False)
    assert base > PROCESS_MB
    assert job_memory_mb(d=400, K=1, budget=300, fresh_samples=64, uses_torch=False) > base
    assert job_memory_mb(d=200, K=5, budget=300, fresh_samples=64, uses_torch=False) > base
    assert job_memory_mb(d=200, K=1, budget=300_000, fresh_samples=64, uses_torch=False) > base
    torch = job_memory_mb(d=200, K=1, budget=300, fresh_samples=64, uses_torch=True)
    assert torch - base == TORCH_PROCESS_MB - PROCESS_MB > 0
    # Every repetition's trace is held until the job writes it: 40 numbers an evaluation.
    one = job_memory_mb(d=4, K=1, budget=100_000, fresh_samples=0, uses_torch=False)
    ten = job_memory_mb(4, 1, 100_000, 0, uses_torch=False, repetitions=10)
    assert ten - one == pytest.approx(9 * 40 * 100_000 * 8 / 2**20, abs=1)


def test_a_job_runs_torch_code_where_its_optimizer_or_its_problem_declares_it() -> None:
    assert not job_uses_torch("cmaes", "sphere")
    assert job_uses_torch("casbo", "sphere")
    assert job_uses_torch("cmaes", "mol-qed")
    assert not job_uses_torch("random", "bbob-f01")


@pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only"
)
def test_the_heap_bound_is_in_force_on_glibc() -> None:
    assert bound_heap_growth() is True
