"""Tables as text for people and papers: Markdown pipe tables and LaTeX booktabs tabulars.

The one renderer of the package: the benchmark tables, the rate check, the claims ledger and
the molecule tables all go through it, so a number reads the same everywhere. CSV (full
precision, for machines) is written by pandas beside these.

>>> frame = pd.DataFrame({"method": ["casbo"], "loss": [0.01234], "runs": [3]})
>>> print("\\n".join(markdown_table(frame)))
| method | loss | runs |
|:---|---:|---:|
| casbo | 1.23e-02 | 3 |
"""

from __future__ import annotations

import math

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
) -> str:
    """A Markdown document: ``# heading``, the caption as a paragraph, the pipe table."""
    table = markdown_table(frame, number_format, missing)
    return "\n".join([f"# {heading}", "", caption, "", *table, ""])


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


def latex_table(frame: pd.DataFrame, heading: str, caption: str) -> str:
    """A booktabs ``tabular`` (to ``\\input`` inside a ``table``), headed by comments."""
    spec = "".join("r" if right else "l" for right in _numeric_columns(frame))
    lines = [f"% {heading}", f"% {caption}", f"\\begin{{tabular}}{{{spec}}}", r"\toprule"]
    lines.append(" & ".join(_latex_escape(str(column)) for column in frame.columns) + r" \\")
    lines.append(r"\midrule")
    lines += [
        " & ".join(_latex_cell(cell_text(value)) for value in row) + r" \\"
        for row in frame.itertuples(index=False)
    ]
    lines += [r"\bottomrule", r"\end{tabular}", ""]
    return "\n".join(lines)
