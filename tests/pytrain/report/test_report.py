"""``delrec-edge report``: every PNG is written, valid, and shows exactly the run's data."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import shutil

import numpy as np
import pytest

import matplotlib  # noqa: E402,F401  (a project dependency: missing means broken, not skipped)

from codegen.integer import refmodel  # noqa: E402
from codegen.integer.modelfile import load_network  # noqa: E402
from pytrain import cli  # noqa: E402
from pytrain.report import rundata as rp  # noqa: E402
from pytrain.cli import report as report_cmd  # noqa: E402
from pytrain.data.loader import load_data  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _main(argv: list[str]) -> int:
    """``pytrain.cli.main`` with the report command registered (whether or not cli.py lists it yet)."""
    original = cli.build_parser

    def build() -> argparse.ArgumentParser:
        parser = original()
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        if "report" not in sub.choices:
            report_cmd.register(sub)
        return parser

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cli, "build_parser", build)
        return cli.main(argv)


def _run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = _main(argv)
    return rc, out.getvalue(), err.getvalue()


def _assert_png(path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, path
    assert len(data) > 5000, f"{path} is only {len(data)} bytes"


@pytest.fixture(scope="module")
def deployed(quantized_edge, tmp_path_factory):
    """A private copy of the quantized edge run with codegen and parity done, and its report."""
    _, shared = quantized_edge
    run = tmp_path_factory.mktemp("report") / "run"
    shutil.copytree(shared, run, ignore=shutil.ignore_patterns("report", "c", "firmware"))
    assert _run_cli(["codegen", str(run), "--force"])[0] == 0
    assert _run_cli(["parity", str(run), "--no-progress"])[0] == 0
    result = rp.write_report(run, progress=False)
    return run, result


@pytest.fixture(scope="module")
def run_data(deployed):
    run, _ = deployed
    metrics = json.loads((run / "metrics.json").read_text())
    net = load_network(run / "model.int.npz")
    from pytrain.model.checkpoint import load_model

    _, record = load_model(run / "model.pt")
    bundle = load_data(record["info"]["data_spec"], bin_ms=net.bin_ms, progress=False)
    return metrics, net, bundle


def test_every_png_is_written_and_valid(deployed):
    run, result = deployed
    assert result.out == run / "report"
    assert [p.name for p in result.files] == list(rp.REPORT_FILES)
    assert sorted(p.name for p in result.out.iterdir()) == sorted(rp.REPORT_FILES)  # nothing else, no leftovers
    for path in result.files:
        _assert_png(path)
    assert result.notes == []
    assert not [p for p in run.iterdir() if p.name.endswith(".partial")]


def test_accuracy_bars_are_the_recorded_metrics(deployed, run_data):
    _, result = deployed
    metrics, _, _ = run_data
    ax = result.figures["accuracy.png"].axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    heights = [p.get_height() for p in ax.patches]
    assert labels == ["float", "fake-quant", "integer", "C"]
    expected = [metrics["float_acc"], metrics["fakequant_acc"], metrics["int_acc"], metrics["c_acc"]]
    assert heights == pytest.approx(expected, abs=0)
    assert [t.get_text() for t in ax.texts] == [f"{v:.4f}" for v in expected]
    hp = metrics["host_parity"]
    assert f"{hp['bit_exact']}/{hp['n']}" in ax.get_title() and "missing" not in ax.get_title()


def test_confusion_matrix_counts_every_test_sample(deployed, run_data):
    _, result = deployed
    metrics, net, bundle = run_data
    ax = result.figures["confusion.png"].axes[0]
    cm = np.asarray(ax.images[0].get_array())
    n = len(bundle.test)
    assert cm.shape == (bundle.n_classes, bundle.n_classes)
    assert int(cm.sum()) == n
    assert int(np.trace(cm)) == metrics["quantization"]["accuracy"]["int"]["correct"]
    # rows are the true classes: each row holds that class's test samples
    assert cm.sum(axis=1).tolist() == np.bincount(bundle.test.y.numpy(), minlength=bundle.n_classes).tolist()
    assert [t.get_text() for t in ax.get_yticklabels()] == list(bundle.classes)
    assert [t.get_text() for t in ax.get_xticklabels()] == list(bundle.classes)


def test_raster_shows_the_integer_model_spikes_of_the_sample(deployed, run_data):
    _, result = deployed
    _, net, bundle = run_data
    x = bundle.test.x[0].numpy()
    trace = refmodel.run(net, x[None].astype(np.int64), keep_trace=True).trace
    axes = result.figures["raster.png"].axes
    image = np.asarray(axes[0].images[0].get_array())
    assert image.shape == (x.shape[1], x.shape[0]) and int(image.sum()) == int(x.sum())
    panels = [ax for ax in axes[1:] if ax.get_label() != "<colorbar>"]
    assert len(panels) == len(net.layers)
    for ax, layer in zip(panels, trace.layers):
        spikes = layer.spikes[0]
        points = ax.collections[0].get_offsets() if ax.collections else np.zeros((0, 2))
        assert len(points) == int(spikes.sum())
        assert sorted(map(tuple, np.asarray(points, dtype=int).tolist())) == sorted(map(tuple, np.argwhere(spikes).tolist()))


def test_delay_histogram_counts_every_neuron(deployed, run_data):
    _, result = deployed
    _, net, _ = run_data
    recurrent = [layer for layer in net.layers if layer.recurrence is not None]
    axes = result.figures["delays.png"].axes
    panels = [ax for ax in axes if ax.patches]
    assert len(panels) == len(recurrent) == 1
    for ax, layer in zip(panels, recurrent):
        heights = np.array([p.get_height() for p in ax.patches])
        centres = np.array([p.get_x() + p.get_width() / 2 for p in ax.patches])
        assert heights.sum() == layer.n
        assert np.allclose(centres, np.round(centres))
        assert int(round((heights * centres).sum())) == int(layer.recurrence.delays.sum())


def test_recurrent_kernel_is_the_integer_kernel(deployed, run_data):
    _, result = deployed
    _, net, _ = run_data
    rec = next(layer.recurrence for layer in net.layers if layer.recurrence is not None)
    assert rec.variant == "conv" and rec.weight.shape[:2] == (1, 1)  # the edge preset: one channel, a stem plot
    ax = result.figures["recurrent_kernel.png"].axes[0]
    stem = ax.containers[0]
    assert np.array_equal(stem.markerline.get_ydata(), rec.weight[0, 0] / 2.0**rec.frac)
    assert np.array_equal(stem.markerline.get_xdata(), np.arange(rec.weight.shape[-1]) - rec.weight.shape[-1] // 2)


def test_memory_bars_sum_to_the_memory_report(deployed):
    run, result = deployed
    report = json.loads((run / "c" / "memory.json").read_text())
    flash_ax, ram_ax = result.figures["memory.png"].axes[:2]
    for ax, key in ((flash_ax, "flash"), (ram_ax, "ram")):
        totals = np.zeros(len(report["rows"]))
        for p in ax.patches:
            totals[int(round(p.get_x() + p.get_width() / 2))] += p.get_height()
        assert totals.tolist() == [r[key]["total"] for r in report["rows"]]
        assert [t.get_text() for t in ax.get_xticklabels()] == [r["name"] for r in report["rows"]]


def test_cli_writes_the_report_and_replaces_an_old_one(deployed, tmp_path):
    run, _ = deployed
    out = tmp_path / "rep"
    out.mkdir()
    (out / "raster.png").write_bytes(b"stale")  # an earlier report is replaced as a whole
    rc, stdout, stderr = _run_cli(["report", str(run), "--out", str(out), "--sample", "3", "--no-progress"])
    assert rc == 0, stderr
    assert f"wrote 6 figures to {out}" in stdout and "note:" not in stdout
    assert sorted(p.name for p in out.iterdir()) == sorted(rp.REPORT_FILES)
    for path in out.iterdir():
        _assert_png(path)
    assert not list(tmp_path.glob(".rep.*"))


def test_a_float_only_run_states_what_is_missing(quantized_edge, tmp_path):
    """Without model.int.npz, metrics or C: float-model raster and confusion, no memory or accuracy plot."""
    _, shared = quantized_edge
    run = tmp_path / "run"
    run.mkdir()
    shutil.copyfile(shared / "model.pt", run / "model.pt")
    result = rp.write_report(run, progress=False)
    assert [p.name for p in result.files] == ["raster.png", "delays.png", "recurrent_kernel.png", "confusion.png"]
    for path in result.files:
        _assert_png(path)
    notes = "\n".join(result.notes)
    assert "memory.png: not drawn" in notes and "accuracy.png: not drawn" in notes
    fig = result.figures["raster.png"]
    title = fig.get_suptitle() if hasattr(fig, "get_suptitle") else fig._suptitle.get_text()  # matplotlib < 3.8
    assert "float model" in title


def test_accuracy_figure_names_missing_stages():
    fig = rp.accuracy_figure({"float": 0.75, "fake-quant": 0.5, "integer": None, "C": None},
                             {"integer": "run quantize", "C": "run parity"})
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["float", "fake-quant"]
    assert [p.get_height() for p in ax.patches] == [0.75, 0.5]
    assert "missing: integer (run quantize); C (run parity)" in ax.get_title()


def test_confusion_matrix_helper():
    cm = rp.confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2], 3)
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]


def _one_line_error(argv: list[str]) -> str:
    rc, stdout, stderr = _run_cli(argv)
    assert rc == 2 and stdout == ""
    assert len(stderr.strip().splitlines()) == 1 and stderr.startswith("delrec-edge: error: "), stderr
    return stderr


def test_bad_input_is_one_line_and_writes_nothing(deployed, tmp_path):
    run, _ = deployed
    assert "does not exist" in _one_line_error(["report", str(tmp_path / "nope"), "--no-progress"])
    out = tmp_path / "out"
    err = _one_line_error(["report", str(run), "--out", str(out), "--sample", "100000", "--no-progress"])
    assert "--sample 100000 is out of range" in err
    assert "--sample" in _one_line_error(["report", str(run), "--out", str(out), "--sample", "-1"])
    assert "run folder" in _one_line_error(["report", str(run), "--out", str(run), "--no-progress"])
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("x")
    assert "not part of a report" in _one_line_error(["report", str(run), "--out", str(tmp_path / "busy")])
    assert (tmp_path / "busy" / "keep.txt").read_text() == "x"
    assert not out.exists() and not list(tmp_path.glob(".*partial"))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "neither model.pt nor model.int.npz" in _one_line_error(["report", str(empty)])


def test_help():
    with pytest.raises(SystemExit) as exc, contextlib.redirect_stdout(io.StringIO()) as out:
        _main(["report", "--help"])
    assert exc.value.code == 0
    text = out.getvalue()
    assert "--sample" in text and "--out" in text and "raster.png" in text
