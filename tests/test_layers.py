"""The arrows between the layers run one way (docs/architecture.md), read from the imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "casbo_bench"


def imported_modules(path: Path) -> set[str]:
    """Every module an import statement of ``path`` names, at any depth."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def modules_below(folder: str) -> list[Path]:
    return sorted((PACKAGE / folder).rglob("*.py"))


FORBIDDEN: list[tuple[str, str, str]] = [
    ("schemas", "casbo_bench.analysis", "schemas are leaves: they check tables, never build them"),
    ("schemas", "casbo_bench.cli", "schemas are leaves"),
    ("molecules", "casbo_bench.analysis", "the molecule models know nothing of the analysis"),
    ("optimizers", "casbo_bench.problems", "an optimizer never sees a problem"),
    ("problems", "casbo_bench.optimizers", "a problem never sees an optimizer"),
    ("analysis", "casbo_bench.runner", "the analysis reads traces, it never runs jobs"),
    ("analysis", "casbo_bench.optimizers", "the analysis reads traces, it never runs jobs"),
]


@pytest.mark.parametrize(("folder", "target", "why"), FORBIDDEN)
def test_no_arrow_runs_up(folder: str, target: str, why: str) -> None:
    offenders = [
        f"{path.relative_to(PACKAGE)} imports {name}"
        for path in modules_below(folder)
        for name in sorted(imported_modules(path))
        if name == target or name.startswith(f"{target}.")
    ]
    assert not offenders, f"{why}: {offenders}"


def test_nothing_that_samples_imports_training_code() -> None:
    training = "casbo_bench.molecules.training"
    offenders = [
        f"{path.relative_to(PACKAGE)} imports {name}"
        for path in modules_below("molecules")
        if "training" not in path.relative_to(PACKAGE / "molecules").parts
        for name in sorted(imported_modules(path))
        if name == training or name.startswith(f"{training}.")
    ]
    assert not offenders, offenders
