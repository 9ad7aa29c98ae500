"""The table every benchmark prints: measure, result, target (and any other columns)."""

from __future__ import annotations

from collections.abc import Sequence


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """One aligned line per row: the first column left-aligned, the next ones right-aligned
    (numbers), the last two left-aligned (a target and its verdict read as text)."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    text_columns = {0, len(headers) - 2, len(headers) - 1} if len(headers) > 3 else {0, 2}
    for row in [headers, *rows]:
        cells = [
            str(cell).ljust(width) if index in text_columns else str(cell).rjust(width)
            for index, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        print("  ".join(cells).rstrip())


def print_measures(rows: list[tuple[str, str, str]]) -> None:
    """One line per (measure, result, target), aligned."""
    print_table(["measure", "result", "target"], rows)
