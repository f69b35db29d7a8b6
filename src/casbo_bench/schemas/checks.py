"""Running a pandera schema and saying what failed: one line per failed check.

Every schema of the package (traces, tables, the rate check and the ledger, the molecule
tables) is checked here, so a failure reads the same everywhere: a first line naming what
was checked and how many checks failed, then one line per check with the failing rows (as
positions in the table) and a few of the failing values.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors


def describe_failures(
    failures: pd.DataFrame, expected_dtypes: Mapping[str, str] | None = None
) -> list[str]:
    """One readable line per failed check from pandera's ``failure_cases`` table.

    pandera lists a failed frame-level check once per column of every failing row; those
    rows are grouped by check alone, so each check gives exactly one line. With
    ``expected_dtypes`` (column -> dtype), a missing column's line lists the expected columns.
    """
    failures = failures.astype({"column": object, "check": object, "index": object})
    frame_level = (failures["schema_context"] == "DataFrameSchema") & ~failures["check"].isin(
        ["column_in_dataframe", "column_in_schema"]
    )
    failures = failures.assign(column=failures["column"].where(~frame_level, None))
    expected = dict(expected_dtypes or {})
    lines: list[str] = []
    for (column, check), cases in failures.groupby(["column", "check"], sort=False, dropna=False):
        values = [repr(value) for value in cases["failure_case"]]
        rows = sorted({int(i) for i in cases["index"] if i is not None and not pd.isna(i)})
        shown = ", ".join(str(row) for row in rows[:5]) + (", ..." if len(rows) > 5 else "")
        if check == "column_in_dataframe":
            listing = f" (expected {', '.join(expected)})" if expected else ""
            lines += [f"missing column {value}{listing}" for value in values]
        elif check == "column_in_schema":
            lines += [
                f"unexpected column {value} (remove it; the schema is strict)" for value in values
            ]
        elif str(check).startswith("dtype("):
            wanted = expected.get(str(column)) or str(check)[len("dtype(") :].rstrip(")")
            lines.append(
                f"column {column!r} has dtype {cases['failure_case'].iloc[0]}, expected {wanted}"
            )
        else:
            what = "has missing values (NaN)" if check == "not_nullable" else str(check)
            if not rows:
                lines.append(what)
            elif not isinstance(column, str):
                lines.append(f"{what}: {len(rows)} row(s) fail (rows {shown})")
            else:
                lines.append(
                    f"column {column!r} {what}: {len(rows)} row(s) fail (rows {shown}; "
                    f"values {', '.join(values[:3])})"
                )
    return lines


def validate_frame(
    schema: pa.DataFrameSchema,
    frame: pd.DataFrame,
    what: str,
    error: type[Exception],
    expected_dtypes: Mapping[str, str] | None = None,
    rows_by_label: bool = False,
) -> pd.DataFrame:
    """Validate ``frame`` against ``schema`` (every check at once) and return it unchanged.

    Failing rows are named by position in ``frame``, or with ``rows_by_label`` by its index
    labels (a trace: the caller's own rows).

    Raises:
        error: one or more checks failed; the message's first line names ``what``, then one
            line per failed check (:func:`describe_failures`).
    """
    try:
        schema.validate(frame if rows_by_label else frame.reset_index(drop=True), lazy=True)
    except SchemaErrors as errors:
        lines = describe_failures(errors.failure_cases, expected_dtypes)
        raise error(
            f"{what} failed validation ({len(lines)} check(s)):\n"
            + "\n".join(f"  - {line}" for line in lines)
        ) from None
    return frame
