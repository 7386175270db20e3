"""Plain-text output the runners print: tables padded into columns."""
from __future__ import annotations

from typing import Sequence


def text_table(rows: Sequence[Sequence[str]]) -> str:
    """Rows of cells (the first row is the header) as left-aligned columns two spaces apart."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows)
