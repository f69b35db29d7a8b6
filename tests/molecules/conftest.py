"""Shared settings of the molecule tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """Run the small tensors of these tests on one thread.

    On a shared 2-core machine, OpenMP threads of tiny operations mostly wait for each
    other (a 16-molecule forward pass measured 3 s on two threads, 0.02 s on one).
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
