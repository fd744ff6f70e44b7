"""The dataset card's and the run report's plots as small PNGs: removal per rule, cluster sizes, scores, bars, lines.

Each function takes plain numbers and returns PNG bytes, so the card can write them through any fsspec
output. matplotlib is imported lazily and used without pyplot (an `Agg` canvas per figure: headless, no
global state, safe in threads). The PNGs carry no timestamp or version metadata, so the same numbers
give the same bytes and a re-released card does not change.
"""

from __future__ import annotations

import functools
import hashlib
import io
import pickle
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

WIDTH_IN, HEIGHT_IN, DPI = 6.4, 3.4, 100  # 640 × 340 pixels: readable on the Hub, a few tens of kB
BAR_COLOR = "#4C72B0"
MAX_BARS = 25  # removal rules shown; the rest are summed into one bar
FEWEST_PLOTTED = 10  # a distribution or funnel of fewer documents is not drawn: its table lists them all
DRAWN_KEPT = 256  # distinct plots `drawn_once` keeps (PNGs of tens of kB each)


def new_figure(height_in: float = HEIGHT_IN):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        from curate.errors import UserError

        raise UserError("the dataset card's plots need matplotlib: pip install 'matplotlib>=3.8' "
                        "(or write the card with plots=False)") from None
    figure = Figure(figsize=(WIDTH_IN, height_in), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def drawn_once(plot: Callable[..., bytes]) -> Callable[..., bytes]:
    """`plot`, drawing each distinct set of numbers once per process: the same numbers give the same bytes, and
    a run of many languages repeats many plots (every empty language's, one-document clusters)."""
    drawn: dict[bytes, bytes] = {}

    @functools.wraps(plot)
    def cached(*args: Any, **kwargs: Any) -> bytes:
        key = hashlib.sha256(pickle.dumps((args, sorted(kwargs.items())))).digest()
        if key not in drawn:
            if len(drawn) >= DRAWN_KEPT:
                drawn.clear()
            drawn[key] = plot(*args, **kwargs)
        return drawn[key]

    return cached


def png_bytes(figure) -> bytes:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


@drawn_once
def removal_per_rule(removed: Mapping[str, int], shares: Mapping[str, float] | None = None) -> bytes:
    """Horizontal bars: documents removed by each rule, largest first, labelled with its share of its stage's input."""
    items = sorted(((rule, int(count)) for rule, count in removed.items() if count), key=lambda kv: (-kv[1], kv[0]))
    shares = dict(shares or {})
    if len(items) > MAX_BARS:
        rest = items[MAX_BARS - 1:]
        items = [*items[:MAX_BARS - 1], (f"{len(rest)} other rules", sum(count for _, count in rest))]
    figure = new_figure(max(HEIGHT_IN, 0.9 + 0.24 * len(items)))
    axes = figure.add_subplot()
    if not items:
        axes.text(0.5, 0.5, "no document removed", ha="center", va="center", transform=axes.transAxes)
        axes.set_axis_off()
        return png_bytes(figure)
    labels = [rule for rule, _ in items][::-1]
    counts = np.array([count for _, count in items][::-1], dtype=float)
    axes.barh(labels, counts, height=0.6, color=BAR_COLOR)
    axes.xaxis.get_major_locator().set_params(integer=True)
    for y, (rule, count) in enumerate(zip(labels, counts)):
        if rule in shares:
            axes.text(count, y, f" {shares[rule]:.1%}", va="center", fontsize=8)
    axes.set_xlim(0, counts.max() * 1.2)
    axes.set_xlabel("documents removed (label: share of the stage's input)" if shares else "documents removed")
    axes.tick_params(axis="y", labelsize=8)
    axes.set_title("Removal per rule", fontsize=10)
    return png_bytes(figure)


@drawn_once
def cluster_size_histogram(histogram: Mapping[int, int]) -> bytes:
    """Log-log scatter of how many near-duplicate clusters have each size."""
    return png_bytes(cluster_size_figure(histogram))


def cluster_size_figure(histogram: Mapping[int, int]):
    """The figure of `cluster_size_histogram`: both log axes labelled with plain integers (1, 2, 5, 10, …)."""
    pairs = sorted((int(size), int(count)) for size, count in histogram.items())
    sizes = np.array([size for size, _ in pairs], dtype=float)
    counts = np.array([count for _, count in pairs], dtype=float)
    keep = (sizes > 0) & (counts > 0)
    figure = new_figure()
    axes = figure.add_subplot()
    axes.scatter(sizes[keep], counts[keep], s=10, color=BAR_COLOR)
    axes.set_xscale("log")
    axes.set_yscale("log")
    for axis, values in ((axes.xaxis, sizes[keep]), (axes.yaxis, counts[keep])):
        integer_log_ticks(axis, values)
    axes.set_xlabel("cluster size (documents)")
    axes.set_ylabel("count")
    axes.grid(True, which="major", alpha=0.3)
    axes.set_title("Near-duplicate cluster sizes", fontsize=10)
    return figure


def integer_log_ticks(axis, values: np.ndarray) -> None:
    """Ticks of a log axis of counts as plain integers: 1-2-5 steps over up to three decades, powers of ten
    beyond (matplotlib's default labels a narrow range `2×10⁰ … 6×10⁰`)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    decades = float(np.log10(values.max() / values.min())) if values.size else 0.0
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0) if decades <= 3 else (1.0,)))
    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}" if value >= 1 else f"{value:g}"))
    axis.set_minor_formatter(NullFormatter())


@drawn_once
def score_distribution(name: str, values: Sequence[float] | np.ndarray, bins: int = 50) -> bytes:
    """Histogram of one score column (NaN and infinite values left out)."""
    data = np.asarray(values, dtype=float)
    data = data[np.isfinite(data)]
    if not data.size:
        return binned_distribution(name, [], [])
    counts, edges = np.histogram(data, bins=bins)
    return binned_distribution(name, edges, counts, float(np.median(data)))


# --- the run report's plots (pipeline/report.py) ----------------------------------------------------------------
@drawn_once
def horizontal_bars(values: Mapping[str, float], title: str, xlabel: str, max_bars: int = MAX_BARS) -> bytes:
    """Horizontal bars in the given order, top to bottom, each labelled with its value; bars past `max_bars`
    are summed into one."""
    items = [(str(label), float(value)) for label, value in values.items()]
    if len(items) > max_bars:
        rest = items[max_bars - 1:]
        items = [*items[:max_bars - 1], (f"{len(rest)} others", sum(value for _, value in rest))]
    figure = new_figure(max(HEIGHT_IN, 0.9 + 0.24 * len(items)))
    axes = figure.add_subplot()
    if not items or not any(value for _, value in items):
        axes.text(0.5, 0.5, "nothing to show", ha="center", va="center", transform=axes.transAxes)
        axes.set_axis_off()
        return png_bytes(figure)
    labels = [label for label, _ in items][::-1]
    widths = np.array([value for _, value in items][::-1], dtype=float)
    axes.barh(labels, widths, height=0.6, color=BAR_COLOR)
    for y, width in enumerate(widths):
        axes.text(width, y, f" {width:,.0f}" if width >= 100 else f" {width:,.3g}", va="center", fontsize=8)
    axes.set_xlim(0, widths.max() * 1.2)
    axes.set_xlabel(xlabel)
    axes.tick_params(axis="y", labelsize=8)
    axes.set_title(title, fontsize=10)
    return png_bytes(figure)


@drawn_once
def binned_distribution(name: str, edges: Sequence[float], counts: Sequence[int],
                        median: float | None = None) -> bytes:
    """Histogram of one score column from its bin edges (len(counts) + 1) and counts, with the median if given."""
    edges_array = np.asarray(edges, dtype=float)
    counts_array = np.asarray(counts, dtype=float)
    figure = new_figure()
    axes = figure.add_subplot()
    if counts_array.size and edges_array.size == counts_array.size + 1 and counts_array.sum() > 0:
        axes.stairs(counts_array, edges_array, fill=True, color=BAR_COLOR)
        if median is not None and np.isfinite(median):
            axes.axvline(float(median), color="black", linewidth=1, linestyle="--", label="median")
            axes.legend(fontsize=8)
    else:
        axes.text(0.5, 0.5, "no values", ha="center", va="center", transform=axes.transAxes)
    axes.set_xlabel(name)
    axes.set_ylabel("documents")
    axes.set_title(f"Distribution of {name}", fontsize=10)
    return png_bytes(figure)


@drawn_once
def line_plot(series: Mapping[str, tuple[Sequence[float], Sequence[float]]], title: str, xlabel: str,
              ylabel: str) -> bytes:
    """One line (with markers) per named series of (x, y) points, e.g. bits-per-byte against tokens per variant."""
    figure = new_figure()
    axes = figure.add_subplot()
    drawn = 0
    for label, (xs, ys) in series.items():
        x, y = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
        points = min(x.size, y.size)
        if points:
            axes.plot(x[:points], y[:points], marker="o", markersize=3, linewidth=1.2, label=str(label))
            drawn += 1
    if drawn:
        axes.legend(fontsize=8)
        axes.grid(True, alpha=0.3)
    else:
        axes.text(0.5, 0.5, "no points", ha="center", va="center", transform=axes.transAxes)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_title(title, fontsize=10)
    return png_bytes(figure)


# `curate ablate`'s variants, one colour each in every plot of them
ABLATION_COLORS = {"raw": "#8C8C8C", "lid": "#DD8452", "dedup": "#55A868", "filtered": "#4C72B0",
                   "rehydrated": "#C44E52"}


@drawn_once
def bpb_plot(aggregate: Mapping[str, Mapping[str, Any]], language: str | None) -> bytes:
    """PNG: held-out bits per byte against training tokens, one line per variant, the band between the
    lowest and highest seed where several seeds ran."""
    figure = new_figure()
    axes = figure.add_subplot()
    for name, row in aggregate.items():
        tokens = np.asarray(row["tokens"], float)
        color = ABLATION_COLORS.get(name)
        label = f"{name} ({row['final_bpb']:.3f})"
        axes.plot(tokens, row["bpb"], marker="o", markersize=3, linewidth=1.5, color=color, label=label)
        if row["seeds"] > 1:
            axes.fill_between(tokens, row["bpb_min"], row["bpb_max"], color=color, alpha=0.2, linewidth=0)
    # The untrained model's first evaluation would dwarf the differences: the y range starts at the second.
    high = max(v for row in aggregate.values() for v in (row["bpb_max"][1:] or row["bpb_max"]))
    low = min(v for row in aggregate.values() for v in row["bpb_min"])
    pad = 0.05 * ((high - low) or 1.0)
    axes.set_ylim(low - pad, high + pad)
    axes.set_xlabel("training tokens")
    axes.set_ylabel("held-out bits per byte")
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=8, title="variant (final bpb)", title_fontsize=8)
    axes.set_title("Ablation of the curation steps" + (f" ({language})" if language else ""), fontsize=10)
    return png_bytes(figure)
