"""`cairn plots diff`: the curves of plots files at several revisions, in one file.

Plots files are those the pipeline declares (stages' `plots:` and top-level `plots:`):
CSV/TSV tables or JSON/YAML lists of records, with `x` and `y` props (default x: the
`step` field if there is one, else the row number; default y: the last field). Each
revision's curve is drawn into one self-contained HTML page of inline SVG charts — no
script, no network — and with `png`, into a PNG by matplotlib (imported only then).
"""

from __future__ import annotations

import html
import math
import posixpath
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cairn.errors import FormatError, UserError
from cairn.pipeline.compare import Revisions, is_number
from cairn.pipeline.metrics import number, read_cached
from cairn.project.snapshot import WORKSPACE, Snapshot

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
          "#17becf", "#7f7f7f", "#bcbd22")
WIDTH, HEIGHT = 640, 360
MARGIN = {"left": 64, "right": 16, "top": 36, "bottom": 44}
DEFAULT_OUT = "plots.html"


@dataclass(frozen=True)
class PlotDef:
    """One plots file and which of its fields to draw."""

    path: str
    x: str | None = None  # None: `step` if present, else the row number
    y: tuple[str, ...] = ()  # empty: the last field
    title: str | None = None


@dataclass
class Line:
    label: str  # "model-v1" or "model-v1: loss" when several fields are drawn
    xs: list[float]
    ys: list[float]


@dataclass
class Plot:
    title: str
    x_label: str
    y_label: str
    lines: list[Line] = field(default_factory=list)


def plot_defs(revs: Revisions, snap: Snapshot) -> list[PlotDef]:
    pipeline = revs.pipeline(snap)
    if pipeline is None:
        return []
    outs = [o for s in pipeline.stages.values() for o in s.outs if o.kind == "plots"]
    defs: list[PlotDef] = []
    for out in [*outs, *pipeline.plots]:
        defs.extend(_defs_of(out.path, out.options))
    return list(dict.fromkeys(defs))


def _defs_of(path: str, options: Mapping[str, Any]) -> Iterator[PlotDef]:
    title = options.get("title")
    y, x = options.get("y"), options.get("x")
    if isinstance(y, Mapping):  # top-level plot: {file: field(s)}
        for file, fields in y.items():
            fx = x.get(file) if isinstance(x, Mapping) else x
            yield PlotDef(str(file), fx if isinstance(fx, str) else None, _names(fields),
                          title or path)
        return
    yield PlotDef(path, x if isinstance(x, str) else None, _names(y), title)


def _names(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(str(v) for v in value)
    return ()


def read_records(path: str, data: bytes) -> list[dict[str, Any]]:
    """A plots file as a list of records (dicts), by its suffix."""
    suffix = posixpath.splitext(path)[1].lower()
    if suffix in (".csv", ".tsv"):
        import csv
        import io

        try:
            reader = csv.DictReader(io.StringIO(data.decode("utf-8")),
                                    delimiter="\t" if suffix == ".tsv" else ",")
            return [{k: number(v) for k, v in row.items() if k is not None} for row in reader]
        except (UnicodeDecodeError, csv.Error) as e:
            raise FormatError(f"unreadable table ({e.__class__.__name__})", path) from None
    if suffix == ".json":
        import json

        try:
            doc = json.loads(data)
        except (ValueError, UnicodeDecodeError) as e:
            raise FormatError(f"invalid JSON ({e.__class__.__name__})", path) from None
    else:
        from cairn import yamlfile

        doc = yamlfile.load(data, path)
    if isinstance(doc, Mapping):  # {"train": [{…}, …]}: DVC takes the first list
        doc = next((v for v in doc.values() if isinstance(v, list)), None)
    if not isinstance(doc, list) or not all(isinstance(r, Mapping) for r in doc):
        raise FormatError("expected a list of records (a table, or a JSON list of objects)",
                          path)
    return [dict(r) for r in doc]


def lines_of(records: Sequence[Mapping[str, Any]], d: PlotDef, label: str
             ) -> tuple[str, str, list[Line]]:
    """(x name, y name, one line per y field) of one revision's records."""
    fields = list(dict.fromkeys(k for r in records for k in r))
    x = d.x or ("step" if "step" in fields else None)
    ys = list(d.y) or [f for f in reversed(fields) if f != x][:1]
    lines = []
    for y in ys:
        points = [(float(r[x]) if x else float(i), float(r[y])) for i, r in enumerate(records)
                  if is_number(r.get(y)) and (x is None or is_number(r.get(x)))]
        name = f"{label}: {y}" if len(ys) > 1 else label
        lines.append(Line(name, [p[0] for p in points], [p[1] for p in points]))
    return x or "step", ", ".join(ys), lines


def collect(revs: Revisions, rev_list: Sequence[str | None]) -> tuple[list[Plot], list[str]]:
    """The plots of each revision, merged by file; and warnings for what is missing."""
    plots: dict[PlotDef, Plot] = {}
    warnings: list[str] = []
    for rev in rev_list:
        snap = revs.snapshot(rev)
        defs = plot_defs(revs, snap)
        errors: dict[str, str] = {}
        paths = [d.path for d in defs]
        contents = snap.read(paths)
        contents.update(read_cached(revs, snap, [p for p in paths if p not in contents], errors))
        warnings += errors.values()
        for d in defs:
            if d.path not in contents:
                continue
            x, y, lines = lines_of(read_records(d.path, contents[d.path]), d, snap.label)
            plot = plots.setdefault(d, Plot(d.title or d.path, x, y))
            plot.lines += lines
    return list(plots.values()), warnings


def plots_diff(revs: Revisions, rev_list: Sequence[str], out: Path | None = None,
               png: bool = False) -> tuple[list[Path], list[str]]:
    """Write the HTML page (and PNG) of the revisions' plots; return what was written.

    No revisions: HEAD and the workspace; one: it and the workspace."""
    from cairn.fsutil import atomic_write

    wanted: list[str | None] = list(rev_list) if len(rev_list) > 1 else \
        [rev_list[0] if rev_list else "HEAD", None]
    plots, warnings = collect(revs, wanted)
    if not plots:
        raise UserError("no plots at these revisions; declare plots files under a stage's "
                        "`plots:` in cairn.yaml")
    labels = [WORKSPACE if r is None else r for r in wanted]
    target = (out or Path(DEFAULT_OUT)).absolute()
    written = [target]
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(target, render_html(plots, labels).encode())
        if png:
            written.append(target.with_suffix(".png"))
            atomic_write(written[-1], render_png(plots))
    except OSError as e:
        raise UserError(f"cannot write {written[-1]}: {e.strerror or e}; choose another -o"
                        ) from None
    return written, warnings


# -- drawing --------------------------------------------------------------------------------


def render_html(plots: Iterable[Plot], labels: Sequence[str]) -> str:
    charts = "\n".join(render_svg(p) for p in plots)
    title = "Plots: " + " vs ".join(labels)
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>body{{font-family:sans-serif;"
            f"margin:24px}} svg{{display:block;margin:0 0 24px}}</style></head>\n<body>"
            f"<h1>{html.escape(title)}</h1>\n{charts}\n</body></html>\n")


def _ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / count
    step = 10 ** math.floor(math.log10(raw))
    step *= next(m for m in (1, 2, 2.5, 5, 10) if raw <= step * m)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def _label(value: float) -> str:
    return f"{value:.6g}"


def render_svg(plot: Plot) -> str:
    xs = [x for line in plot.lines for x in line.xs] or [0.0]
    ys = [y for line in plot.lines for y in line.ys] or [0.0]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    if x0 == x1:
        x0, x1 = x0 - 1, x1 + 1
    if y0 == y1:
        y0, y1 = y0 - abs(y0) * 0.1 - 1e-9, y1 + abs(y1) * 0.1 + 1e-9
    left, top = MARGIN["left"], MARGIN["top"]
    w, h = WIDTH - left - MARGIN["right"], HEIGHT - top - MARGIN["bottom"]

    def px(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * w

    def py(y: float) -> float:
        return top + h - (y - y0) / (y1 - y0) * h

    e = html.escape
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
             f'viewBox="0 0 {WIDTH} {HEIGHT}" font-size="11">',
             f'<title>{e(plot.title)}</title>',
             f'<text x="{WIDTH / 2}" y="18" text-anchor="middle" font-size="14">{e(plot.title)}'
             '</text>',
             f'<rect x="{left}" y="{top}" width="{w}" height="{h}" fill="none" stroke="#999"/>']
    for t in _ticks(x0, x1):
        parts.append(f'<text x="{px(t):.1f}" y="{top + h + 14}" text-anchor="middle">'
                     f'{_label(t)}</text>')
    for t in _ticks(y0, y1):
        parts.append(f'<line x1="{left}" x2="{left + w}" y1="{py(t):.1f}" y2="{py(t):.1f}" '
                     'stroke="#eee"/>')
        parts.append(f'<text x="{left - 4}" y="{py(t) + 4:.1f}" text-anchor="end">'
                     f'{_label(t)}</text>')
    parts.append(f'<text x="{left + w / 2}" y="{HEIGHT - 8}" text-anchor="middle">'
                 f'{e(plot.x_label)}</text>')
    parts.append(f'<text transform="translate(14 {top + h / 2}) rotate(-90)" '
                 f'text-anchor="middle">{e(plot.y_label)}</text>')
    for i, line in enumerate(plot.lines):
        color = COLORS[i % len(COLORS)]
        points = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in zip(line.xs, line.ys,
                                                                      strict=True))
        parts.append(f'<polyline class="series" data-revision="{e(line.label)}" '
                     f'fill="none" stroke="{color}" stroke-width="1.5" points="{points}"/>')
        ly = top + 12 + i * 14
        parts.append(f'<line x1="{left + 8}" x2="{left + 24}" y1="{ly - 4}" y2="{ly - 4}" '
                     f'stroke="{color}" stroke-width="2"/>'
                     f'<text x="{left + 28}" y="{ly}">{e(line.label)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def render_png(plots: Sequence[Plot]) -> bytes:
    """The same charts as one PNG, one subplot each (matplotlib, imported only here)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(plots), 1, figsize=(8, 4 * len(plots)), squeeze=False)
    try:
        for ax, plot in zip(axes[:, 0], plots, strict=True):
            for line in plot.lines:
                ax.plot(line.xs, line.ys, label=line.label)
            ax.set_title(plot.title)
            ax.set_xlabel(plot.x_label)
            ax.set_ylabel(plot.y_label)
            ax.legend()
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=100)
    finally:
        plt.close(fig)
    return buffer.getvalue()
