"""What the runners print: tables padded into columns, and one line for a failure."""
from __future__ import annotations

import sys
from typing import Any, Callable, Sequence

from config import ConfigError, error_line


def text_table(rows: Sequence[Sequence[str]]) -> str:
    """Rows of cells (the first row is the header) as left-aligned columns two spaces apart."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows)


def run_or_report(fn: Callable[[], Any]) -> tuple[Any, int]:
    """(fn(), 0); or (None, 2) after one `error: config key ...` line for a ConfigError, (None, 1)
    after one `error: ...` line for a RuntimeError (a run that failed; its log is named in it)."""
    try:
        return fn(), 0
    except ConfigError as e:
        print(error_line(e), file=sys.stderr)
        return None, 2
    except RuntimeError as e:
        print(f"error: {e}", file=sys.stderr)
        return None, 1
