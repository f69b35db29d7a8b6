"""Nothing read from disk can run code: the loaders of the sources, read from the sources.

Every ``torch.load`` passes ``weights_only=True``, every ``np.load`` ``allow_pickle=False``,
YAML is read with ``yaml.safe_load`` only, and no module imports a pickle-based loader, in
src/, scripts/, benchmarks/ and the workflow (Snakefile and .smk files, read as text).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYTHON_FILES = sorted(
    path for folder in ("src", "scripts", "benchmarks") for path in (ROOT / folder).rglob("*.py")
)
WORKFLOW_FILES = [ROOT / "Snakefile", *sorted((ROOT / "workflow").rglob("*.smk"))]

REQUIRED_KEYWORDS = {
    ("torch", "load"): ("weights_only", True),
    ("np", "load"): ("allow_pickle", False),
    ("numpy", "load"): ("allow_pickle", False),
}
"""``module.function`` -> the keyword and the constant value every call must pass."""

FORBIDDEN_CALLS = {
    ("yaml", "load"),
    ("yaml", "load_all"),
    ("yaml", "full_load"),
    ("yaml", "full_load_all"),
    ("yaml", "unsafe_load"),
    ("yaml", "unsafe_load_all"),
    ("pd", "read_pickle"),
    ("pandas", "read_pickle"),
}
FORBIDDEN_MODULES = {"pickle", "cPickle", "dill", "joblib", "shelve", "marshal", "cloudpickle"}


def unsafe_loads(source: str) -> list[str]:
    """Line-numbered descriptions of the unsafe loads in Python ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [alias.name for alias in node.names]
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            found += [
                f"line {node.lineno}: imports {name}"
                for name in names
                if name.split(".")[0] in FORBIDDEN_MODULES
            ]
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
        ):
            continue
        call = (node.func.value.id, node.func.attr)
        if call in FORBIDDEN_CALLS:
            found.append(f"line {node.lineno}: {'.'.join(call)}")
        if call in REQUIRED_KEYWORDS:
            keyword, value = REQUIRED_KEYWORDS[call]
            given = {
                item.arg: item.value.value
                for item in node.keywords
                if isinstance(item.value, ast.Constant)
            }
            if keyword not in given or given[keyword] is not value:
                found.append(f"line {node.lineno}: {'.'.join(call)} without {keyword}={value}")
    return found


@pytest.mark.parametrize("path", PYTHON_FILES, ids=lambda path: str(path.relative_to(ROOT)))
def test_python_sources_load_nothing_unsafely(path: Path) -> None:
    assert not unsafe_loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda path: str(path.relative_to(ROOT)))
def test_the_workflow_reads_yaml_safely_and_unpickles_nothing(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert not re.findall(r"yaml\.(?:unsafe_|full_)?load(?:_all)?\(", text)
    assert not re.findall(r"\b(?:import|from)\s+(?:pickle|dill|joblib|shelve|marshal)\b", text)
    assert not re.findall(r"torch\.load\(|np\.load\(|read_pickle\(", text)


@pytest.mark.parametrize(
    "source",
    [
        "import torch\ntorch.load(path)",
        "import torch\ntorch.load(path, weights_only=False)",
        "import numpy as np\nnp.load(path)",
        "import numpy as np\nnp.load(path, allow_pickle=True)",
        "import yaml\nyaml.load(text, Loader=yaml.Loader)",
        "import yaml\nyaml.unsafe_load(text)",
        "import pickle",
        "from joblib import load",
        "import pandas as pd\npd.read_pickle(path)",
    ],
)
def test_the_check_finds_each_unsafe_load(source: str) -> None:
    assert unsafe_loads(source)


def test_the_check_accepts_the_safe_forms() -> None:
    source = (
        "torch.load(buffer, map_location='cpu', weights_only=True)\n"
        "np.load(path, allow_pickle=False)\n"
        "yaml.safe_load(text)\n"
    )
    assert unsafe_loads(source) == []
    assert len(PYTHON_FILES) > 50 and WORKFLOW_FILES[0].is_file()
