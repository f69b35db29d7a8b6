"""Tables as text for people and papers: Markdown pipe tables, LaTeX booktabs tabulars and
HTML pages.

The one renderer of the package: the benchmark tables, the rate check, the claims ledger and
the molecule tables all go through it, so a number reads the same everywhere. CSV (full
precision, for machines) is written by pandas beside these. The HTML page of a document is
rendered from its Markdown (:func:`html_document`), so the two never disagree; the Snakemake
report shows the HTML pages inline.

>>> frame = pd.DataFrame({"method": ["casbo"], "loss": [0.01234], "runs": [3]})
>>> print("\\n".join(markdown_table(frame)))
| method | loss | runs |
|:---|---:|---:|
| casbo | 1.23e-02 | 3 |
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

SCIENTIFIC = ".2e"
"""Three significant digits in scientific notation: the benchmark tables' number format."""

_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def cell_text(value: object, number_format: str = SCIENTIFIC, missing: str = "n/a") -> str:
    """One cell as text: booleans lower case, integers whole, reals in ``number_format``,
    NaN and None as ``missing``, infinities as ``inf``/``-inf``."""
    if value is None or value is pd.NA:
        return missing
    if isinstance(value, bool | np.bool_):
        return str(bool(value)).lower()
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return missing
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return format(float(value), number_format)
    return str(value)


def _numeric_columns(frame: pd.DataFrame) -> list[bool]:
    return [pd.api.types.is_numeric_dtype(dtype) for dtype in frame.dtypes]


def markdown_table(
    frame: pd.DataFrame, number_format: str = SCIENTIFIC, missing: str = "n/a"
) -> list[str]:
    """The lines of a pipe table: numeric columns right-aligned, ``|`` in text escaped."""
    header = "| " + " | ".join(str(column) for column in frame.columns) + " |"
    rule = "|" + "|".join("---:" if right else ":---" for right in _numeric_columns(frame)) + "|"
    body = [
        "| "
        + " | ".join(cell_text(v, number_format, missing).replace("|", "\\|") for v in row)
        + " |"
        for row in frame.itertuples(index=False)
    ]
    return [header, rule, *(body or ["", "(no rows)"])]


def markdown_document(
    frame: pd.DataFrame,
    heading: str,
    caption: str,
    number_format: str = SCIENTIFIC,
    missing: str = "n/a",
    notes: Sequence[str] = (),
) -> str:
    """A Markdown document: ``# heading``, the caption as a paragraph, the pipe table, then
    each of ``notes`` (the table's footnotes) as a paragraph."""
    table = markdown_table(frame, number_format, missing)
    footnotes = [line for note in notes for line in ("", note)]
    return "\n".join([f"# {heading}", "", caption, "", *table, *footnotes, ""])


def _latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(character, character) for character in text)


def _latex_cell(text: str) -> str:
    """A cell's text in LaTeX: ``1.23e-02`` as ``$1.23{\\times}10^{-2}$``, inf as infinity."""
    if text == "inf":
        return r"$\infty$"
    mantissa, _, exponent = text.partition("e")
    if exponent and mantissa.lstrip("-").replace(".", "").isdigit():
        return f"${mantissa}{{\\times}}10^{{{int(exponent)}}}$"
    return _latex_escape(text)


def latex_table(frame: pd.DataFrame, heading: str, caption: str, notes: Sequence[str] = ()) -> str:
    """A booktabs ``tabular`` (to ``\\input`` inside a ``table``), headed by comments and
    followed by ``notes`` (the table's footnotes) in footnote size."""
    spec = "".join("r" if right else "l" for right in _numeric_columns(frame))
    lines = [f"% {heading}", f"% {caption}", f"\\begin{{tabular}}{{{spec}}}", r"\toprule"]
    lines.append(" & ".join(_latex_escape(str(column)) for column in frame.columns) + r" \\")
    lines.append(r"\midrule")
    lines += [
        " & ".join(_latex_cell(cell_text(value)) for value in row) + r" \\"
        for row in frame.itertuples(index=False)
    ]
    lines += [r"\bottomrule", r"\end{tabular}"]
    lines += [f"\\par\\smallskip{{\\footnotesize {_latex_escape(note)}}}" for note in notes]
    lines.append("")
    return "\n".join(lines)


_HTML_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif;
       font-size: 14px; line-height: 1.45; color: #1a1a1a; margin: 1.2em; }
h1 { font-size: 1.3em; } h2 { font-size: 1.15em; } h3 { font-size: 1.05em; }
p, ul { max-width: 60em; }
.table { overflow-x: auto; margin: 0.8em 0; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #c8c8c8; padding: 0.25em 0.6em; vertical-align: top; }
th { background: #eef1f5; text-align: left; }
tbody tr:nth-child(even) { background: #f7f8fa; }
td.number, th.number { text-align: right; font-variant-numeric: tabular-nums;
                       white-space: nowrap; }
code { background: #f0f0f0; padding: 0 0.2em; }
"""

_INLINE = re.compile(r"`([^`]+)`|\*\*(.+?)\*\*|\*([^*\s][^*]*?)\*")
_CELL_SEPARATOR = re.compile(r"(?<!\\)\|")
_HEADING = re.compile(r"(#{1,6}) (.*)")
_NUMBER = ' class="number"'


def _inline_html(text: str) -> str:
    """``text`` escaped, with Markdown's `code`, **strong** and *emphasis* as HTML."""
    parts, end = [], 0
    for match in _INLINE.finditer(text):
        parts.append(html.escape(text[end : match.start()]))
        code, strong, emphasis = match.groups()
        if code is not None:
            parts.append(f"<code>{html.escape(code)}</code>")
        elif strong is not None:
            parts.append(f"<strong>{html.escape(strong)}</strong>")
        else:
            parts.append(f"<em>{html.escape(emphasis)}</em>")
        end = match.end()
    parts.append(html.escape(text[end:]))
    return "".join(parts)


def _row_cells(line: str) -> list[str]:
    """The cells of one pipe-table row, ``\\|`` read back as ``|``."""
    inner = line.strip().removeprefix("|").removesuffix("|")
    return [cell.strip().replace("\\|", "|") for cell in _CELL_SEPARATOR.split(inner)]


def _html_table(lines: Sequence[str]) -> list[str]:
    """A pipe table of :func:`markdown_table` as an HTML table; cell text is escaped and
    never read as Markdown (a value is shown as it is)."""
    header = _row_cells(lines[0])
    rule = _row_cells(lines[1]) if len(lines) > 1 else []
    right = [cell.endswith(":") and not cell.startswith(":") for cell in rule]
    right += [False] * (len(header) - len(right))

    def row(tag: str, cells: Sequence[str]) -> str:
        return (
            "<tr>"
            + "".join(
                f"<{tag}{_NUMBER if numeric else ''}>{html.escape(cell)}</{tag}>"
                for cell, numeric in zip(cells, right, strict=False)
            )
            + "</tr>"
        )

    body = [row("td", _row_cells(line)) for line in lines[2:]]
    return [
        '<div class="table"><table>',
        f"<thead>{row('th', header)}</thead>",
        "<tbody>",
        *body,
        "</tbody></table></div>",
    ]


def html_document(markdown: str) -> str:
    """A self-contained HTML page of a Markdown document of this package.

    It reads what the package's documents are made of: ``#`` headings, paragraphs, ``- ``
    bullet lists, pipe tables of :func:`markdown_table` (numeric columns right-aligned, as
    marked by their rule row), and `code`, **strong** and *emphasis* in running text. All
    text is HTML-escaped; table cells are shown exactly as in the Markdown. The page's title
    is the first heading.
    """
    lines = markdown.splitlines()
    body: list[str] = []
    title = ""
    paragraph: list[str] = []

    def close_paragraph() -> None:
        if paragraph:
            body.append(f"<p>{_inline_html(' '.join(paragraph))}</p>")
            paragraph.clear()

    index = 0
    while index < len(lines):
        line = lines[index]
        heading = _HEADING.fullmatch(line)
        if not line.strip():
            close_paragraph()
        elif heading:
            close_paragraph()
            level, text = len(heading.group(1)), heading.group(2).strip()
            title = title or text
            body.append(f"<h{level}>{_inline_html(text)}</h{level}>")
        elif line.startswith("|"):
            close_paragraph()
            end = index
            while end < len(lines) and lines[end].startswith("|"):
                end += 1
            body += _html_table(lines[index:end])
            index = end
            continue
        elif line.startswith("- "):
            close_paragraph()
            end = index
            while end < len(lines) and lines[end].startswith("- "):
                end += 1
            items = [f"<li>{_inline_html(item[2:])}</li>" for item in lines[index:end]]
            body += ["<ul>", *items, "</ul>"]
            index = end
            continue
        else:
            paragraph.append(line.strip())
        index += 1
    close_paragraph()
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            '<head><meta charset="utf-8">',
            f"<title>{html.escape(title)}</title>",
            f"<style>{_HTML_STYLE}</style>",
            "</head>",
            "<body>",
            *body,
            "</body>",
            "</html>",
            "",
        ]
    )
