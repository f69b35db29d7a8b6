"""The memory model of a job and the heap bound of the torch optimizers."""

from __future__ import annotations

import platform

import pytest

from casbo_bench.memory import PROCESS_MB, bound_heap_growth, job_memory_mb


def test_the_model_grows_with_every_size_it_names() -> None:
    base = job_memory_mb(d=200, K=1, budget=300, fresh_samples=64)
    assert base > PROCESS_MB
    assert job_memory_mb(d=400, K=1, budget=300, fresh_samples=64) > base
    assert job_memory_mb(d=200, K=5, budget=300, fresh_samples=64) > base
    assert job_memory_mb(d=200, K=1, budget=300_000, fresh_samples=64) > base


@pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only"
)
def test_the_heap_bound_is_in_force_on_glibc() -> None:
    assert bound_heap_growth() is True
