"""Small server-side figures for the status page: an inline SVG loss curve and human-readable durations."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape


def loss_curve_svg(points: Sequence[Sequence[float]], width: int = 320, height: int = 120,
                   eval_loss: float | None = None) -> str:
    """The training loss per step as an inline SVG polyline (with the eval loss as a dashed line)."""
    if len(points) < 2:
        return ""
    pad = 28
    steps = [float(p[0]) for p in points]
    losses = [float(p[1]) for p in points]
    values = [*losses, *([eval_loss] if eval_loss is not None else [])]
    low, high = min(values), max(values)
    span_x = (max(steps) - min(steps)) or 1.0
    span_y = (high - low) or 1.0

    def x(step: float) -> float:
        return pad + (step - min(steps)) / span_x * (width - 2 * pad)

    def y(loss: float) -> float:
        return height - pad + 8 - (loss - low) / span_y * (height - 2 * pad)

    line = " ".join(f"{x(s):.1f},{y(v):.1f}" for s, v in zip(steps, losses, strict=True))
    parts = [
        f'<svg class="curve" role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>training loss over {len(points)} logged steps</title>',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fbfcfe" stroke="#d0d7de"/>',
        f'<polyline fill="none" stroke="#0969da" stroke-width="2" points="{line}"/>',
        f'<text x="4" y="14" font-size="10">{high:.3f}</text>',
        f'<text x="4" y="{height - 12}" font-size="10">{low:.3f}</text>',
        f'<text x="{width - pad}" y="{height - 4}" font-size="10" text-anchor="end">step {int(max(steps))}'
        "</text>",
    ]
    if eval_loss is not None:
        parts.append(f'<line x1="{pad}" x2="{width - pad}" y1="{y(eval_loss):.1f}" y2="{y(eval_loss):.1f}" '
                     'stroke="#bf8700" stroke-dasharray="4 3"/>')
        parts.append(f'<text x="{width - pad}" y="{y(eval_loss) - 3:.1f}" font-size="10" text-anchor="end" '
                     f'fill="#7d4e00">eval {escape(f"{eval_loss:.3f}")}</text>')
    parts.append("</svg>")
    return "".join(parts)


def duration(seconds: float | None) -> str:
    """'42 s', '3 min 5 s', '2 h 4 min', '3 d 1 h'; '—' when unknown."""
    if seconds is None:
        return "—"
    total = round(seconds)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"
