"""The fault suite: every test here injects one fault and asserts how the project handles it.

Each module marks its tests with ``pytest.mark.fault("<category>")``; every test (every
parametrized case) is one injected fault. At the end of the session the suite prints one row
per category: the faults injected and how many were handled as required (the test passed).
Run it alone with ``make faults``; CI runs it with the rest of the tests.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from tests.snakemake_runs import REPOSITORY, run_snakemake

FAULT_CONFIG = REPOSITORY / "tests" / "faults" / "workflow.yaml"
"""The small run the workflow cases damage, kill or interrupt."""
FAULT_RESULTS = Path("results") / "faults"


def fault_tables(folder: Path) -> dict[str, str]:
    """Every CSV table of the fault run in ``folder``: relative path -> text."""
    return {
        str(path.relative_to(folder)): path.read_text()
        for path in sorted((folder / FAULT_RESULTS / "tables").rglob("*.csv"))
    }


@pytest.fixture(scope="session")
def clean_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the finished, undamaged fault run."""
    folder = tmp_path_factory.mktemp("clean")
    (folder / "tests").symlink_to(REPOSITORY / "tests")
    finished = run_snakemake(folder, "--configfile", str(FAULT_CONFIG), timeout=900)
    assert finished.returncode == 0, finished.stderr[-3000:]
    return folder


_injected: Counter[str] = Counter()
_handled: Counter[str] = Counter()


def _category(item: pytest.Item) -> str | None:
    marker = item.get_closest_marker("fault")
    return str(marker.args[0]) if marker is not None else None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    category = _category(item)
    if category is None or report.skipped:
        return
    # One count per test: its call phase, or the setup phase when setup already failed.
    if report.when == "call" or (report.when == "setup" and report.failed):
        _injected[category] += 1
        _handled[category] += int(report.passed)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _injected:
        return
    width = max(len(category) for category in _injected)
    write = terminalreporter.write_line
    terminalreporter.section("fault suite")
    write(f"{'fault category':<{width}}  injected  handled as required")
    for category in sorted(_injected):
        write(f"{category:<{width}}  {_injected[category]:>8}  {_handled[category]:>20}")
    total, handled = sum(_injected.values()), sum(_handled.values())
    write(f"{'total':<{width}}  {total:>8}  {handled:>20}")
