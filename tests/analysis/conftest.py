from __future__ import annotations

import pandas as pd
import pytest

from .synthetic import synthetic_traces


@pytest.fixture(scope="session")
def traces() -> pd.DataFrame:
    """Three methods x two problems x two d x two (K, scoring) x ten seeds, 40 evaluations."""
    return synthetic_traces()
