"""Inline SVG figures for index.html: line charts (training and calibration
curves), a histogram (regression errors) and a heat map (confusion matrix).

Written by hand because matplotlib is not in the pinned environment and a
figure must live inside the page (no external files, no scripts). Every
function takes the same numbers report.json holds and returns one <svg>.
"""
from __future__ import annotations

import html
import math
from typing import Sequence

W, H = 500, 280
PAD_L, PAD_R, PAD_T, PAD_B = 56, 96, 30, 44
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")


def esc(x) -> str:
    """Any value as HTML text (the page, the plots and the model card all escape through here)."""
    return html.escape(str(x))


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1000 or abs(v) < 0.01:
        return f"{v:.2g}"
    return f"{v:.3g}"


def _ticks(lo: float, hi: float, n: int = 5, integer: bool = False) -> list[float]:
    """About n round tick values covering [lo, hi] (whole numbers only if `integer`)."""
    if hi <= lo:
        return [lo]
    step = 10 ** math.floor(math.log10((hi - lo) / n))
    if integer:
        step = max(step, 1)
    for m in (1, 2, 5, 10):
        if (hi - lo) / (step * m) <= n:
            step *= m
            break
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def _frame(title: str, x_label: str, y_label: str, xlim, ylim, body: list[str], legend: list[tuple[str, str]],
           integer_x: bool = False, integer_y: bool = False) -> str:
    (x0, x1), (y0, y1) = xlim, ylim
    pw, ph = W - PAD_L - PAD_R, H - PAD_T - PAD_B
    sx = lambda x: PAD_L + (x - x0) / (x1 - x0) * pw  # noqa: E731
    sy = lambda y: PAD_T + ph - (y - y0) / (y1 - y0) * ph  # noqa: E731
    out = [f'<svg class="fig" width="{W}" height="{H}" viewBox="0 0 {W} {H}" role="img" aria-label="{esc(title)}">',
           f"<title>{esc(title)}</title>",
           f'<rect x="{PAD_L}" y="{PAD_T}" width="{pw}" height="{ph}" fill="#fff" stroke="#999"/>',
           f'<text x="{W / 2}" y="18" text-anchor="middle" font-size="13" font-weight="bold">{esc(title)}</text>',
           f'<text x="{PAD_L + pw / 2}" y="{H - 8}" text-anchor="middle" font-size="11">{esc(x_label)}</text>',
           f'<text x="14" y="{PAD_T + ph / 2}" text-anchor="middle" font-size="11" '
           f'transform="rotate(-90 14 {PAD_T + ph / 2})">{esc(y_label)}</text>']
    for t in _ticks(x0, x1, integer=integer_x):
        out.append(f'<line x1="{sx(t):.1f}" x2="{sx(t):.1f}" y1="{PAD_T + ph}" y2="{PAD_T + ph + 4}" stroke="#666"/>'
                   f'<text x="{sx(t):.1f}" y="{PAD_T + ph + 16}" text-anchor="middle" font-size="10">{_fmt(t)}</text>')
    for t in _ticks(y0, y1, integer=integer_y):
        out.append(f'<line x1="{PAD_L}" x2="{PAD_L + pw}" y1="{sy(t):.1f}" y2="{sy(t):.1f}" stroke="#eee"/>'
                   f'<text x="{PAD_L - 4}" y="{sy(t) + 3:.1f}" text-anchor="end" font-size="10">{_fmt(t)}</text>')
    out += [b(sx, sy) if callable(b) else b for b in body]
    for i, (name, color) in enumerate(legend):  # right of the plot, never over the data
        y = PAD_T + 12 + 14 * i
        out.append(f'<rect x="{PAD_L + pw + 8}" y="{y - 8}" width="10" height="10" fill="{color}"/>'
                   f'<text x="{PAD_L + pw + 22}" y="{y + 1}" font-size="10">{esc(name)}</text>')
    out.append("</svg>")
    return "\n".join(out)


def line_chart(title: str, series: Sequence[tuple[str, Sequence[Sequence[float]]]], x_label: str, y_label: str,
               xlim=None, ylim=None, diagonal: bool = False, dashed: Sequence[str] = (),
               integer_x: bool = False) -> str:
    """Lines with point markers; series = [(name, [[x, y], ...])]. `dashed`: names drawn dashed."""
    pts = [p for _, s in series for p in s if p[1] is not None and math.isfinite(p[1])]
    if not pts:
        return ""
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    xlim = xlim or (min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1)
    if ylim is None:
        lo, hi = min(ys), max(ys)
        span = (hi - lo) or abs(hi) or 1.0
        ylim = (min(0.0, lo) if lo >= 0 and lo < span else lo - 0.05 * span, hi + 0.05 * span)
    body, legend = [], []
    if diagonal:
        body.append(lambda sx, sy: f'<line x1="{sx(xlim[0]):.1f}" y1="{sy(ylim[0]):.1f}" x2="{sx(xlim[1]):.1f}" '
                                   f'y2="{sy(ylim[1]):.1f}" stroke="#aaa" stroke-dasharray="4 3"/>')
    for i, (name, s) in enumerate(series):
        color = COLORS[i % len(COLORS)]
        s = [p for p in s if p[1] is not None and math.isfinite(p[1])]
        if not s:
            continue
        dash = ' stroke-dasharray="6 3"' if name in dashed else ""
        body.append(lambda sx, sy, s=s, color=color, dash=dash: (
            f'<polyline fill="none" stroke="{color}" stroke-width="2"{dash} points="'
            + " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in s) + '"/>'
            + "".join(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.5" fill="{color}"/>' for x, y in s)))
        legend.append((name, color))
    return _frame(title, x_label, y_label, xlim, ylim, body, legend, integer_x=integer_x)


def histogram(title: str, edges: Sequence[float], counts: Sequence[float], x_label: str,
              band: tuple[float, float] | None = None) -> str:
    """Bars over `edges` (len(counts) == len(edges) + 1: open bins drawn one bin wide at each end).
    `band`: an x range shaded (the tolerance)."""
    if not counts or len(counts) != len(edges) + 1:
        return ""
    width = (edges[-1] - edges[0]) / max(len(edges) - 1, 1)
    bounds = [edges[0] - width] + list(edges) + [edges[-1] + width]
    xlim, ylim = (bounds[0], bounds[-1]), (0.0, max(max(counts), 1.0) * 1.1)
    body = []
    if band:
        body.append(lambda sx, sy: f'<rect x="{sx(band[0]):.1f}" y="{sy(ylim[1]):.1f}" '
                                   f'width="{sx(band[1]) - sx(band[0]):.1f}" height="{sy(0) - sy(ylim[1]):.1f}" '
                                   'fill="#e3f4e1"/>')
    for i, c in enumerate(counts):
        lo, hi = bounds[i], bounds[i + 1]
        color = "#9aa9b8" if i in (0, len(counts) - 1) else COLORS[0]
        body.append(lambda sx, sy, lo=lo, hi=hi, c=c, color=color: (
            f'<rect x="{sx(lo) + 1:.1f}" y="{sy(c):.1f}" width="{max(sx(hi) - sx(lo) - 2, 1):.1f}" '
            f'height="{sy(0) - sy(c):.1f}" fill="{color}"><title>[{_fmt(lo)}, {_fmt(hi)}): {c:g}</title></rect>'))
    legend = [("± tolerance", "#e3f4e1")] if band else []
    return _frame(title, x_label, "examples", xlim, ylim, body, legend, integer_y=True)


def heatmap(title: str, matrix: Sequence[Sequence[float]], classes: Sequence[str]) -> str:
    """Confusion matrix: rows true class, columns predicted; cell shade = share of its row."""
    k = len(matrix)
    if not k:
        return ""
    cell = max(22, min(56, 300 // k))
    left, top = 90, 46
    w, h = left + cell * k + 16, top + cell * k + 28
    out = [f'<svg class="fig" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="{esc(title)}">',
           f"<title>{esc(title)}</title>",
           f'<text x="{w / 2}" y="16" text-anchor="middle" font-size="13" font-weight="bold">{esc(title)}</text>',
           f'<text x="{left + cell * k / 2}" y="{h - 6}" text-anchor="middle" font-size="11">predicted (argmax)</text>']
    for i, row in enumerate(matrix):
        total = sum(row) or 1.0
        out.append(f'<text x="{left - 4}" y="{top + i * cell + cell / 2 + 4}" text-anchor="end" font-size="10">'
                   f"{esc(classes[i])}</text>")
        for j, v in enumerate(row):
            share = v / total
            color = f"rgb({int(255 - 200 * share)},{int(255 - 130 * share)},255)" if i == j else \
                f"rgb(255,{int(255 - 170 * share)},{int(255 - 170 * share)})"
            out.append(f'<rect x="{left + j * cell}" y="{top + i * cell}" width="{cell}" height="{cell}" '
                       f'fill="{color}" stroke="#fff"><title>true {esc(classes[i])}, predicted {esc(classes[j])}: '
                       f"{v:g} ({share:.0%} of the row)</title></rect>"
                       f'<text x="{left + j * cell + cell / 2}" y="{top + i * cell + cell / 2 + 4}" '
                       f'text-anchor="middle" font-size="10">{v:g}</text>')
    for j, c in enumerate(classes):
        out.append(f'<text x="{left + j * cell + cell / 2}" y="{top - 6}" text-anchor="middle" font-size="10">'
                   f"{esc(c)}</text>")
    out.append("</svg>")
    return "\n".join(out)


def cosine_heatmap(title: str, pairs: dict[str, float], names: Sequence[str]) -> str:
    """Task x task matrix of a symmetric score in [-1, 1] given per "a/b" pair (the mean
    cosine of two tasks' gradients): red below 0 (conflict), blue above; the diagonal is 1."""
    k = len(names)
    if k < 2:
        return ""
    value = {(a, b): v for pair, v in pairs.items() for a, b in [pair.split("/")]}
    cell = max(30, min(64, 320 // k))
    left, top = 90, 46
    w, h = max(left + cell * k + 16, 7 * len(title) + 20), top + cell * k + 16
    out = [f'<svg class="fig" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="{esc(title)}">',
           f"<title>{esc(title)}</title>",
           f'<text x="{w / 2}" y="16" text-anchor="middle" font-size="13" font-weight="bold">{esc(title)}</text>']
    for i, a in enumerate(names):
        out.append(f'<text x="{left - 4}" y="{top + i * cell + cell / 2 + 4}" text-anchor="end" font-size="10">'
                   f"{esc(a)}</text>")
        out.append(f'<text x="{left + i * cell + cell / 2}" y="{top - 6}" text-anchor="middle" font-size="10">'
                   f"{esc(a)}</text>")
        for j, b in enumerate(names):
            v = 1.0 if i == j else value.get((a, b), value.get((b, a)))
            if v is None:
                continue
            s = max(-1.0, min(1.0, v))
            color = (f"rgb({int(255 - 200 * s)},{int(255 - 130 * s)},255)" if s >= 0 else
                     f"rgb(255,{int(255 + 170 * s)},{int(255 + 170 * s)})")
            out.append(f'<rect x="{left + j * cell}" y="{top + i * cell}" width="{cell}" height="{cell}" '
                       f'fill="{color}" stroke="#fff"><title>{esc(a)} / {esc(b)}: {v:.3f}</title></rect>'
                       f'<text x="{left + j * cell + cell / 2}" y="{top + i * cell + cell / 2 + 4}" '
                       f'text-anchor="middle" font-size="10">{v:.2f}</text>')
    out.append("</svg>")
    return "\n".join(out)


def num(x) -> str:
    """A value for the page: – for None, integers without a point, 4 decimals, 4 digits when large."""
    if x is None:
        return "–"
    if isinstance(x, float) and x.is_integer() and abs(x) < 1e9:
        return str(int(x))
    if isinstance(x, float):
        return f"{x:.4f}" if abs(x) < 1e4 else f"{x:.4g}"
    return esc(x)
