"""Adding an optimizer or a test function is adding one file (the README's promise).

A copy of the repository gets one new test function and one new optimizer, each a single
file from tests/plugin_examples/; the tests that loop over the registries must then pass in
the copy, with the new names among their test ids, and ``casbo-bench list`` must list both.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = Path(__file__).resolve().parent / "plugin_examples"
COPIED = ("src", "tests", "workflow", "config", "Snakefile", "pyproject.toml")
"""What the registry tests read: the package, the tests, and the workflow files that
test_envs.py parses when it is collected."""

NEW_FUNCTION = "bent-cigar"
NEW_OPTIMIZER = "elitist-es"
NEW_FILES = {
    "bent_cigar.py": "src/casbo_bench/problems/functions",
    "elitist_es.py": "src/casbo_bench/optimizers",
}

REGISTRY_TESTS = (
    "tests/problems",
    "tests/optimizers/test_contract.py",
    "tests/optimizers/test_matched_scope.py::test_latent_methods_share_the_frozen_later_noises",
    "tests/test_runner.py::test_registered_optimizer_is_reproducible_and_writes_a_valid_file",
    "tests/test_cli.py::test_list_shows_the_registries_in_order",
    "tests/test_cli.py::test_list_gives_every_plugin_its_summary",
    "tests/test_envs.py::test_torch_optimizers_are_the_registered_ones_that_take_a_device",
    "tests/test_envs.py::test_plugin_packages_are_registries",
)
"""The tests that loop over the registries (the slow TuRBO case left out by ``-m``)."""

# Where each new plugin must show up in the test ids: every module above that loops over
# its registry.
EXPECTED_MODULES = {
    NEW_FUNCTION: {
        "tests/problems/functions/test_base.py",
        "tests/problems/test_instance.py",
        "tests/problems/test_init.py",
        "tests/problems/test_chain.py",
        "tests/test_cli.py",
    },
    NEW_OPTIMIZER: {
        "tests/optimizers/test_contract.py",
        "tests/test_runner.py",
        "tests/test_cli.py",
    },
}

_PASSED = re.compile(r"^(?P<module>[\w/]+\.py)::(?P<test>\S+) PASSED", re.MULTILINE)


@pytest.fixture(scope="module")
def repository_with_new_plugins(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the repository with the two example plugins added, one file each."""
    copy = tmp_path_factory.mktemp("repository")
    ignored = shutil.ignore_patterns("__pycache__", "*.egg-info", ".pytest_cache")
    for entry in COPIED:
        source = REPO / entry
        if source.is_dir():
            shutil.copytree(source, copy / entry, ignore=ignored)
        else:
            shutil.copy2(source, copy / entry)
    for file_name, package in NEW_FILES.items():
        target = copy / package / file_name
        assert not target.exists(), f"{target.name} is no longer new; rename the example"
        shutil.copy2(EXAMPLES / file_name, target)
    return copy


def _run_in(copy: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    """``python *arguments`` in ``copy``, importing casbo_bench from the copy only."""
    environment = {**os.environ, "PYTHONPATH": str(copy / "src")}
    return subprocess.run(
        [sys.executable, *arguments],
        cwd=copy,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


@pytest.mark.slow
def test_registry_tests_pass_and_check_the_new_plugins(repository_with_new_plugins: Path) -> None:
    options = ["-x", "-v", "-p", "no:cacheprovider", "-m", "not slow", "--no-header"]
    completed = _run_in(repository_with_new_plugins, "-m", "pytest", *options, *REGISTRY_TESTS)
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-2000:]
    passed = [(match["module"], match["test"]) for match in _PASSED.finditer(completed.stdout)]
    for name, modules in EXPECTED_MODULES.items():
        found = {module for module, test in passed if re.search(rf"[\[-]{name}[\]-]", test)}
        assert modules <= found, f"{name} is checked only in {sorted(found)}"


def test_list_shows_the_new_plugins(repository_with_new_plugins: Path) -> None:
    completed = _run_in(repository_with_new_plugins, "-m", "casbo_bench", "list")
    assert completed.returncode == 0, completed.stderr
    listed = {line.split()[0] for line in completed.stdout.splitlines() if line.startswith("  ")}
    assert {NEW_FUNCTION, NEW_OPTIMIZER} <= listed
