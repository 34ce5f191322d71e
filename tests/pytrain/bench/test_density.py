"""The density sweep: the SHD-shaped network, its inputs, the dense baseline app and the command's table."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from codegen.integer import refmodel as rm
from codegen.verify.firmware_dense import dense_config, run_dense
from pytrain.bench.density import SHAPE, dense_shapes, shd_shaped_network, spike_inputs
from pytrain.cli import main


def test_network_has_the_shd_shape_and_activity_grows_with_input_density():
    net = shd_shaped_network()
    assert (net.n_inputs, net.layers[0].n, net.layers[1].n, net.n_classes) == SHAPE
    assert net.layers[1].recurrence.variant == "conv"
    rates = []
    for density in (0.05, 0.5):
        x = spike_inputs(density, 1, 30)
        assert abs(x.mean() - density) < 0.02 and x.max() == 1
        trace = rm.run(net, x, keep_trace=True).trace
        rates.append([float(layer.spikes.mean()) for layer in trace.layers])
    assert 0 < rates[0][0] < rates[1][0] < 0.6 and 0 < rates[0][1] < rates[1][1] < 0.6


def test_dense_app_is_exact_and_reports_per_mac_costs(tmp_path):
    """The dense baseline's products equal numpy (checksums) on a DSP core; a changed checksum is refused."""
    layers = run_dense("cortex-m4", [(8, 20), (4, 32)], tmp_path)
    assert [(d.rows, d.cols) for d in layers] == [(8, 20), (4, 32)]
    assert all(0.5 < d.insns_per_mac < 20 for d in layers)
    text, sums = dense_config([(8, 20)])
    assert "dense_w0" in text and len(sums) == 1
    assert dense_shapes() == [(256, 140), (256, 256), (20, 256)]


def test_bench_density_command(tmp_path, capsys):
    out = tmp_path / "d.json"
    assert main(["bench-density", "--densities", "10", "--targets", "cortex-m4", "--samples", "1", "--steps", "8",
                 "--json", str(out)]) == 0  # fmt: skip
    text = capsys.readouterr().out
    assert "| 10 % |" in text and "760,814 / ours (M4)" in text and "dense int8 evaluation" in text
    data = json.loads(out.read_text())
    (row,) = data["rows"]
    assert row["bit_exact"]["cortex-m4"] == 1 and row["insns_per_step"]["cortex-m4"] > 0
    assert data["dense"][0]["macs_per_step"] == 140 * 256 + 256 * 256 + 256 * 3 + 256 * 20


@pytest.mark.parametrize("args", [["--densities", "0"], ["--densities", "x"], ["--targets", "cortex-z9"],
                                  ["--samples", "0"]])  # fmt: skip
def test_bench_density_refuses_bad_arguments(args):
    proc = subprocess.run([sys.executable, "-m", "pytrain", "bench-density", *args], capture_output=True, text=True)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
