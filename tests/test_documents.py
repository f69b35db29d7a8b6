from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from casbo_bench.documents import (
    cell_text,
    html_document,
    latex_table,
    markdown_document,
    markdown_table,
)
from casbo_bench.files import write_all_or_nothing, write_atomically, write_text_atomically


def test_cells_read_the_same_in_every_table() -> None:
    assert cell_text(np.int64(3)) == "3"
    assert cell_text(np.True_) == "true"
    assert cell_text(0.001234) == "1.23e-03"
    assert cell_text(float("nan")) == "n/a"
    assert cell_text(None, missing="") == ""
    assert cell_text(-float("inf")) == "-inf"
    assert cell_text(0.61234, ".3g") == "0.612"


def test_markdown_aligns_numbers_right_and_escapes_pipes() -> None:
    frame = pd.DataFrame({"claim": ["a | b"], "p": [0.5]})
    assert markdown_table(frame) == ["| claim | p |", "|:---|---:|", "| a \\| b | 5.00e-01 |"]
    empty = markdown_document(frame.iloc[:0], "heading", "caption")
    assert empty.startswith("# heading\n\ncaption\n") and "(no rows)" in empty


def test_latex_escapes_text_and_typesets_numbers() -> None:
    frame = pd.DataFrame({"method": ["casbo_v2 & 50%"], "p_value": [0.001234]})
    latex = latex_table(frame, "heading", "title")
    assert r"casbo\_v2 \& 50\% & $1.23{\times}10^{-3}$ \\" in latex
    assert r"method & p\_value \\" in latex


def test_notes_follow_the_table_in_markdown_and_latex() -> None:
    frame = pd.DataFrame({"method": ["casbo"], "p": [0.5]})
    markdown = markdown_document(frame, "heading", "caption", notes=["a 50% note", "another"])
    assert markdown.endswith("| casbo | 5.00e-01 |\n\na 50% note\n\nanother\n")
    latex = latex_table(frame, "heading", "caption", ["a 50% note"])
    assert latex.endswith("\\end{tabular}\n\\par\\smallskip{\\footnotesize a 50\\% note}\n")


def test_html_page_of_a_markdown_document() -> None:
    """The page has the document's heading, paragraphs, list and table, every text escaped,
    numbers right-aligned, a table cell shown as it is (no Markdown read inside it)."""
    frame = pd.DataFrame({"claim": ["a | b <script>", "*not emphasis*"], "p": [0.5, np.inf]})
    markdown = "\n".join(
        [
            markdown_document(frame, "Ledger: <tiny>", "Rule `abc` & **bold**, *scope*.").rstrip(),
            "## Reasons",
            "",
            "- first & only",
            "",
        ]
    )
    page = html_document(markdown)
    assert page.startswith("<!DOCTYPE html>") and "<title>Ledger: &lt;tiny&gt;</title>" in page
    assert "<h1>Ledger: &lt;tiny&gt;</h1>" in page and "<h2>Reasons</h2>" in page
    assert "<p>Rule <code>abc</code> &amp; <strong>bold</strong>, <em>scope</em>.</p>" in page
    assert "<ul>\n<li>first &amp; only</li>\n</ul>" in page
    assert '<th>claim</th><th class="number">p</th>' in page
    assert '<td>a | b &lt;script&gt;</td><td class="number">5.00e-01</td>' in page
    assert "<td>*not emphasis*</td>" in page and '<td class="number">inf</td>' in page
    assert "<script>" not in page
    empty = html_document(markdown_document(frame.iloc[:0], "h", "c"))
    assert "<tbody>\n</tbody>" in empty and "<p>(no rows)</p>" in empty


def test_an_atomic_write_is_shared_readable_and_replaces_whole(tmp_path: Path) -> None:
    path = write_text_atomically(tmp_path / "sub" / "a.txt", "new")
    assert path.read_text() == "new"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644

    def fail(stream: object) -> None:
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        write_atomically(path, fail)
    assert path.read_text() == "new" and sorted(p.name for p in path.parent.iterdir()) == ["a.txt"]


def test_all_or_nothing_leaves_every_file_when_one_rename_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "a.md", tmp_path / "b.md"
    write_all_or_nothing({first: "old a", second: "old b"})

    def refuse(source: object, target: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("casbo_bench.files.os.replace", refuse)
    with pytest.raises(OSError, match="disk full"):
        write_all_or_nothing({first: "new a", second: "new b"})
    assert (first.read_text(), second.read_text()) == ("old a", "old b")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.md", "b.md"]
