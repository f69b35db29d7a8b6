"""Words the statistics write into tables and the schemas check: test names, verdicts and
target rules.

Defined here, below both (standard library only), so that the schemas need nothing from the
analysis that fills the tables.
"""

from __future__ import annotations

from typing import Literal

WILCOXON = "wilcoxon signed-rank"
MANN_WHITNEY = "mann-whitney rank-sum"
TESTS: tuple[str, ...] = (WILCOXON, MANN_WHITNEY)
"""The names of the tests a comparison against the reference may use, as written in tables."""

Verdict = Literal["better", "worse", "no significant difference"]
VERDICTS: tuple[str, ...] = ("better", "worse", "no significant difference")
"""A method's verdict against the reference (losses minimized: better is lower)."""

RELATIVE = "relative"
ABSOLUTE = "absolute"
TARGET_RULES: tuple[str, ...] = (RELATIVE, ABSOLUTE)
"""How the targets of the ERT and the runtime ECDFs are set: fractions of each setting's
median initial gap (relative), or the same loss levels everywhere (absolute)."""
