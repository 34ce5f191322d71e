"""The figures of a run, from training to the generated C.

Each figure has one small pure function (arrays and dicts in, a :class:`matplotlib.figure.Figure` out):

* :func:`raster_figure`          input counts and the hidden layers' spikes for one sample
* :func:`delay_histogram_figure` the learned integer delays, one histogram per recurrent layer
* :func:`recurrent_kernel_figure` the recurrent weights (conv kernel, dense matrix or per-lag taps kernels)
* :func:`accuracy_figure`        float / fake-quant / integer / C test accuracy, as recorded in metrics.json
* :func:`confusion_figure`       the confusion matrix of the test split
* :func:`memory_figure`          per-layer flash and RAM of the generated C

:func:`pytrain.report.rundata.write_report` gathers the data of a run folder and writes the PNGs.

Figures are built on :class:`~matplotlib.figure.Figure` directly (no pyplot, no display, no global state);
PNGs are rendered by the Agg backend.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

DPI = 110

FLASH_PARTS = (("weights", "ff weights"), ("bias", "bias"), ("recurrent_weights", "recurrent weights"),
               ("delay_tables", "delay tables"), ("constants", "constants"))
RAM_PARTS = (("membranes", "membranes"), ("spikes", "spikes"), ("delay_ring", "delay ring"),
             ("ring_index", "ring index"), ("scores", "scores"))


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


# ------------------------------------------------------------------------------------------ figures


def raster_figure(inputs: np.ndarray, hidden: Sequence[tuple[str, np.ndarray]], bin_ms: float, title: str = ""):
    """Input counts ``inputs`` (T, C) as an image, then one spike raster per hidden layer ``(name, (T, N) 0/1)``.

    Every spike is one point of the layer's scatter (its offsets are ``(step, neuron)``).
    """
    inputs = np.asarray(inputs)
    fig = _figure(9.0, 2.2 + 1.9 * len(hidden))
    heights = [max(1.5, inputs.shape[1] / 64)] + [max(1.0, np.asarray(s).shape[1] / 64) for _, s in hidden]
    axes = fig.subplots(len(hidden) + 1, 1, sharex=True, gridspec_kw={"height_ratios": heights}, squeeze=False)[:, 0]
    t_steps = inputs.shape[0]
    ax = axes[0]
    im = ax.imshow(inputs.T, aspect="auto", origin="lower", cmap="Greys", interpolation="nearest",
                   extent=(-0.5, t_steps - 0.5, -0.5, inputs.shape[1] - 0.5), vmin=0, vmax=max(1, int(inputs.max())))
    fig.colorbar(im, ax=ax, label="spikes / bin", pad=0.01)
    ax.set_ylabel("input channel")
    ax.set_title(f"input: {inputs.shape[1]} channels, {int(inputs.sum())} spikes", loc="left", fontsize=9)
    for ax, (name, spikes) in zip(axes[1:], hidden):
        spikes = np.asarray(spikes)
        t, n = np.nonzero(spikes)
        if t.size:
            ax.scatter(t, n, marker="|", s=12, linewidths=0.8, color="black")
        else:
            ax.text(0.5, 0.5, "no spikes", transform=ax.transAxes, ha="center", va="center", color="grey")
        ax.set_ylim(-0.5, spikes.shape[1] - 0.5)
        ax.set_ylabel("neuron")
        rate = spikes.mean() if spikes.size else 0.0
        ax.set_title(f"{name}: {spikes.shape[1]} neurons, {int(spikes.sum())} spikes (rate {rate:.3f} per neuron "
                     f"per step)", loc="left", fontsize=9)
    axes[-1].set_xlim(-0.5, t_steps - 0.5)
    axes[-1].set_xlabel(f"time step ({bin_ms:g} ms bins)")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def delay_histogram_figure(layers: Sequence[tuple[str, np.ndarray]], bin_ms: float, delay_max: float | None = None,
                           title: str = "learned axonal delays"):
    """One bar per integer delay value and recurrent layer ``(name, (N,) int delays)``.

    Bar ``d`` counts the presynaptic neurons with delay ``d``, so the heights of a panel sum to its N.
    A layer with no delays (taps) gets a panel saying so.
    """
    fig = _figure(8.0, 0.6 + 2.6 * max(1, len(layers)))
    axes = fig.subplots(max(1, len(layers)), 1, squeeze=False)[:, 0]
    for ax, (name, delays) in zip(axes, layers):
        d = np.asarray(delays).astype(np.int64).ravel()
        if d.size == 0:
            ax.text(0.5, 0.5, f"{name}: no learned delays (fixed lags)", transform=ax.transAxes,
                    ha="center", va="center", color="grey")
            ax.set_axis_off()
            continue
        counts = np.bincount(d)
        values = np.arange(counts.size)
        ax.bar(values, counts, width=0.85, color="tab:blue")
        ax.set_xlim(-1, max(int(d.max()), int(delay_max or 0)) + 1)
        ax.set_ylabel("neurons")
        ax.set_title(f"{name}: {d.size} neurons, delay {int(d.min())}..{int(d.max())} steps, mean {d.mean():.1f}, "
                     f"median {np.median(d):g}", loc="left", fontsize=9)
        ax.axvline(d.mean(), color="tab:red", linestyle="--", linewidth=1, label="mean")
        if delay_max is not None:
            ax.axvline(delay_max, color="grey", linestyle=":", linewidth=1, label=f"clamp {delay_max:g}")
        ax.legend(loc="upper right", fontsize=8)
        # secondary axis: a spike of a neuron with delay d reaches its targets (1 + d) bins later
        sec = ax.secondary_xaxis("top", functions=(lambda s: (1 + s) * bin_ms, lambda ms: ms / bin_ms - 1))
        sec.set_xlabel("arrival after (ms)", fontsize=8)
    axes[-1].set_xlabel("delay d (steps; a spike arrives 1 + d steps later)")
    fig.suptitle(title, fontsize=10)
    return fig


def recurrent_kernel_figure(kernels: Sequence[dict], title: str = "recurrent weights"):
    """The recurrent weights of each recurrent layer: dicts ``name``, ``variant``, ``weight`` (float), ``unit``.

    ``conv``/``conv-nodelay`` (C, C, K): a stem plot over the kernel offsets when C = 1, else a heatmap with
    one row per output channel and one column per (input channel, offset). ``dense`` (N, N): the matrix
    (row = postsynaptic, column = presynaptic neuron). ``taps`` (D, C, C, K): a heatmap with one row per lag.
    """
    fig = _figure(8.0, 0.6 + 3.0 * max(1, len(kernels)))
    axes = fig.subplots(max(1, len(kernels)), 1, squeeze=False)[:, 0]
    for ax, k in zip(axes, kernels):
        w = np.asarray(k["weight"], dtype=np.float64)
        variant, name, unit = k["variant"], k["name"], k.get("unit", "weight")
        lim = float(np.abs(w).max()) if w.size else 1.0
        lim = lim if lim > 0 else 1.0
        if variant in ("conv", "conv-nodelay") and w.shape[0] == 1:
            kk = w.shape[-1]
            offsets = np.arange(kk) - (kk - 1) // 2
            values = w[0, 0]
            ax.stem(offsets, values, basefmt=" ")
            ax.axhline(0, color="grey", linewidth=0.6)
            for o, v in zip(offsets, values):
                ax.annotate(f"{v:.4g}", (o, v), textcoords="offset points", xytext=(6, 4 if v >= 0 else -12), fontsize=8)
            ax.set_xticks(offsets)
            ax.set_xlabel("offset along the neuron axis (presynaptic j = i + offset)")
            ax.set_ylabel(unit)
            ax.set_ylim(-1.25 * lim, 1.25 * lim)
            ax.set_title(f"{name}: {variant} kernel, 1 channel, K = {kk}", loc="left", fontsize=9)
            continue
        from matplotlib.ticker import MaxNLocator

        extent, block = None, None
        if variant == "dense":
            img, xlabel, ylabel = w, "presynaptic neuron", "postsynaptic neuron"
            what = f"dense {w.shape[0]} x {w.shape[1]} matrix"
        elif variant == "taps":
            d, c, _, kk = w.shape
            img = w.reshape(d, c * c * kk)
            what = f"taps: {d} lags, {c} channel{'s' if c > 1 else ''}, K = {kk}"
            ylabel = "lag (steps)"
            if c == 1:
                pad = (kk - 1) // 2
                xlabel = "offset along the neuron axis"
                extent = (-pad - 0.5, pad + 0.5, d + 0.5, 0.5)  # rows are lags 1..D, columns offsets -pad..pad
            else:
                xlabel, block = "(output channel, input channel, offset): blocks of K offsets", kk
                extent = (-0.5, img.shape[1] - 0.5, d + 0.5, 0.5)
        else:
            c, _, kk = w.shape
            img = w.reshape(c, c * kk)
            xlabel, ylabel, block = "(input channel, offset): blocks of K offsets", "output channel", kk
            what = f"{variant} kernel, {c} channels, K = {kk}"
        im = ax.imshow(img, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest", extent=extent)
        if block is not None:
            for edge in range(block, img.shape[1], block):
                ax.axvline(edge - 0.5, color="black", linewidth=0.6)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        fig.colorbar(im, ax=ax, label=unit, pad=0.01)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(f"{name}: {what}", loc="left", fontsize=9)
    fig.suptitle(title, fontsize=10)
    return fig


def accuracy_figure(values: dict[str, float | None], missing_hints: dict[str, str] | None = None,
                    extra: str = "", title: str = "test accuracy by deployment stage"):
    """One bar per stage (in ``values`` order) whose value is not ``None``, annotated with the value.

    Stages whose value is ``None`` are named in the subtitle (with ``missing_hints[stage]`` when given).
    """
    present = [(k, float(v)) for k, v in values.items() if v is not None]
    missing = [k for k, v in values.items() if v is None]
    fig = _figure(6.5, 4.2)
    ax = fig.subplots()
    colors = {"float": "tab:blue", "fake-quant": "tab:orange", "integer": "tab:green", "C": "tab:red"}
    x = np.arange(len(present))
    bars = ax.bar(x, [v for _, v in present], color=[colors.get(k, "tab:grey") for k, _ in present], width=0.6)
    for bar, (_, v) in zip(bars, present):
        ax.annotate(f"{v:.4f}", (bar.get_x() + bar.get_width() / 2, v), textcoords="offset points", xytext=(0, 3),
                    ha="center", va="bottom", fontsize=9)
    ax.set_xticks(x, [k for k, _ in present])
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("test accuracy")
    lines = []
    if missing:
        hints = missing_hints or {}
        lines.append("missing: " + "; ".join(f"{k} ({hints[k]})" if k in hints else k for k in missing))
    if extra:
        lines.append(extra)
    ax.set_title("\n".join(lines), fontsize=8, color="dimgrey")
    fig.suptitle(title, fontsize=10)
    return fig


def confusion_matrix(y_true, y_pred, n_classes: int) -> np.ndarray:
    """``cm[i, j]`` = samples of true class ``i`` predicted as ``j`` (int64, (K, K))."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    return cm


def confusion_figure(cm: np.ndarray, classes: Sequence[str], title: str = "confusion matrix"):
    """The counts ``cm`` (K, K) as an image (rows true, columns predicted), counts written in the cells."""
    cm = np.asarray(cm)
    k = cm.shape[0]
    size = min(14.0, 3.0 + 0.38 * k)
    fig = _figure(size + 1.2, size)
    ax = fig.subplots()
    im = ax.imshow(cm, cmap="Blues", interpolation="nearest", vmin=0)
    fig.colorbar(im, ax=ax, label="samples", shrink=0.8)
    names = list(classes) if len(classes) == k else [str(i) for i in range(k)]
    ax.set_xticks(np.arange(k), names, rotation=60, ha="right", rotation_mode="anchor", fontsize=8)
    ax.set_yticks(np.arange(k), names, fontsize=8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if k <= 40:
        top = cm.max() if cm.size else 0
        for i, j in zip(*np.nonzero(cm)):
            ax.text(j, i, str(int(cm[i, j])), ha="center", va="center", fontsize=7 if k > 20 else 8,
                    color="white" if cm[i, j] > 0.6 * top else "black")
    n, correct = int(cm.sum()), int(np.trace(cm))
    ax.set_title(f"{correct}/{n} correct ({correct / max(n, 1):.4f})", fontsize=9)
    fig.suptitle(title, fontsize=10)
    return fig


def memory_figure(report: dict, source: str = ""):
    """Per-layer flash and RAM (bytes) as stacked bars of their parts, from a :func:`codegen.generator.memory.memory_report`.

    The stacked heights of a row sum to that row's ``flash.total`` / ``ram.total``.
    """
    rows = report["rows"]
    names = [r["name"] for r in rows]
    fig = _figure(max(7.0, 1.6 * len(rows) + 3), 5.0)
    axes = fig.subplots(1, 2)
    x = np.arange(len(rows))
    for ax, key, parts, label in ((axes[0], "flash", FLASH_PARTS, "flash"), (axes[1], "ram", RAM_PARTS, "RAM")):
        bottom = np.zeros(len(rows))
        for part, part_label in parts:
            h = np.array([float(r[key].get(part, 0)) for r in rows])
            if not h.any():
                continue
            ax.bar(x, h, bottom=bottom, label=part_label, width=0.6)
            bottom += h
        totals = [int(r[key]["total"]) for r in rows]
        for xi, tot in zip(x, totals):
            ax.annotate(f"{tot} B", (xi, tot), textcoords="offset points", xytext=(0, 3), ha="center", va="bottom",
                        fontsize=8)
        ax.set_xticks(x, names)
        ax.set_ylabel("bytes")
        ax.set_ylim(0, 1.15 * max(totals + [1]))
        ax.set_title(f"{label}: {sum(totals)} B in these rows", fontsize=9)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=3, frameon=False)
    flash, ram = report.get("flash", {}), report.get("ram", {})
    notes = []
    if flash:
        code = flash.get("code")
        code_text = "code not measured" if not code else f"code .text {code['text']} B, .rodata {code['rodata']} B"
        notes.append(f"flash data {flash.get('data_total')} B (incl. class names {flash.get('class_names')} B), "
                     f"{code_text}")
    if ram:
        code = flash.get("code") if flash else None
        stack = (f"stack of one step {code['stack_step']} B (static analysis, Cortex-M4 -Os)"
                 if code and "stack_step" in code else f"step scratch arrays {ram.get('step_stack_scratch')} B")
        notes.append(f"state struct {ram.get('state_struct')} B, {stack}")
    if source:
        notes.append(source)
    fig.suptitle("memory of the generated C, per layer" + ("\n" + "\n".join(notes) if notes else ""), fontsize=9)
    return fig
