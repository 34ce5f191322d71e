"""Plain-text tables as the commands print them: aligned columns, labels left, numbers right."""

from __future__ import annotations

from typing import Sequence


def cell(value, spec: str) -> str:
    """``value`` formatted with ``spec``, or "-" where there is none (not measured)."""
    return "-" if value is None else format(value, spec)


def aligned(head: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1) -> list[str]:
    """``head`` and ``rows`` as lines of columns two spaces apart, each as wide as its widest cell: the first
    ``left`` columns left-aligned, the others right-aligned."""
    widths = [max(len(row[i]) for row in [head, *rows]) for i in range(len(head))]
    return ["  ".join(c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
            for row in [head, *rows]]
