"""The table every benchmark prints: measure, result, target."""

from __future__ import annotations


def print_measures(rows: list[tuple[str, str, str]]) -> None:
    """One line per (measure, result, target), aligned."""
    width = max(len(name) for name, _, _ in rows)
    result_width = max(len("result"), *(len(value) for _, value, _ in rows))
    print(f"{'measure'.ljust(width)}  {'result'.rjust(result_width)}  target")
    for name, value, target in rows:
        print(f"{name.ljust(width)}  {value.rjust(result_width)}  {target}")
