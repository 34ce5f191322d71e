"""NIR export: file round trip on the tiny preset, graph contents, and what the graph means on its own."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import nir  # noqa: E402  (a project dependency: missing means broken, not skipped)

from pytrain.interop import nir as nirexport  # noqa: E402
from pytrain.model.checkpoint import model_record, save_torch_atomic  # noqa: E402
from pytrain.model.config import TrainConfig  # noqa: E402
from codegen.common.errors import UserError  # noqa: E402
from pytrain.model.network import DelRecSNN  # noqa: E402
from pytrain.model.presets import get_preset  # noqa: E402

VARIANTS = {
    "conv": {"recurrent": "conv"},
    "dense": {"recurrent": "dense"},
    "conv-nodelay": {"recurrent": "conv-nodelay"},
    "taps": {"recurrent": "taps"},
    "conv-2ch": {"recurrent": "conv", "channels": 2, "kernel_size": 5},
    # ssc-like: reset by subtraction, linear readout, no BatchNorm, no bias
    "conv-subtract": {"recurrent": "conv", "reset": "subtract", "readout": "linear", "batchnorm": False, "bias": False},
}


def tiny_model(seed: int = 0, **changes) -> DelRecSNN:
    """The tiny preset, random weights, non-trivial BatchNorm statistics, integer delays 1..5 set explicitly."""
    torch.manual_seed(seed)
    model = DelRecSNN(get_preset("tiny").model.replace(**changes))
    with torch.no_grad():
        for layer in model.layers:
            if layer.bn is not None:
                layer.bn.running_mean.uniform_(-0.5, 0.5)
                layer.bn.running_var.uniform_(0.5, 2.0)
                layer.bn.weight.uniform_(0.5, 1.5)
                layer.bn.bias.uniform_(-0.2, 0.2)
            if layer.rec is not None and layer.rec.delays is not None:
                layer.rec.delays.copy_(torch.randint(1, 6, layer.rec.delays.shape).float())
    return model.eval()


def spikes_in(model: DelRecSNN, seed: int = 1, t: int = 30, b: int = 3) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.poisson(torch.full((t, b, model.cfg.n_inputs), 0.8), generator=gen)


@pytest.fixture(scope="module", params=list(VARIANTS))
def exported(request, tmp_path_factory):
    """(name, model, path, graph read back from the file) for each variant."""
    model = tiny_model(**VARIANTS[request.param])
    path = tmp_path_factory.mktemp("nir") / f"{request.param}.nir"
    nirexport.write_nir(model, path, preset="tiny")
    return request.param, model, path, nirexport.read_graph(path)


def test_round_trip_through_a_file_is_bit_exact(exported):
    name, model, path, _ = exported
    back = nirexport.read_nir(path)
    assert back.cfg == model.cfg
    x = spikes_in(model)
    with torch.no_grad():
        a, b = model(x), back(x)
    assert all(s.sum() > 0 for s in a.spikes), "the test input must make every layer spike"
    assert torch.equal(a.readout, b.readout)
    for sa, sb in zip(a.spikes, b.spikes):
        assert torch.equal(sa, sb)


def test_graph_has_the_expected_nodes_and_metadata(exported):
    name, model, _, graph = exported
    cfg = model.cfg
    kinds = {k: type(v).__name__ for k, v in graph.nodes.items()}
    assert kinds["input"] == "Input" and kinds["output"] == "Output"
    assert [kinds[f"lif{i}"] for i in range(len(cfg.hidden))] == ["LIF"] * len(cfg.hidden)
    assert kinds["fc0"] == ("Affine" if cfg.bias or cfg.batchnorm else "Linear")
    assert ("readout" in kinds) == (cfg.readout == "leaky")
    rec_kinds = {v for k, v in kinds.items() if k.startswith("rec1")}
    assert rec_kinds == ({"Linear"} if cfg.recurrent == "dense" else {"Conv1d", "Flatten"})
    has_delay = any(v == "Delay" for v in kinds.values())
    assert has_delay == (cfg.recurrent != "conv-nodelay")
    meta = graph.metadata
    assert meta["format"] == nirexport.FORMAT and meta["preset"] == "tiny"
    assert float(meta["dt"]) == pytest.approx(cfg.bin_ms / 1000.0)
    assert meta["recurrent"] == cfg.recurrent and meta["reset"] == cfg.reset
    assert int(meta["recurrent_cycle_latency_steps"]) == 1
    # the recurrent layer is a cycle back into its LIF
    assert any(dst == "lif1" and src.startswith("rec1") for src, dst in graph.edges)


def test_delay_nodes_hold_delay_steps_times_dt(exported):
    name, model, _, graph = exported
    dt = float(graph.metadata["dt"])
    rec = model.layers[1].rec
    if model.cfg.recurrent in ("conv", "dense"):
        node = graph.nodes["delay1"]
        steps = torch.floor(rec.delays.detach() + 0.5).numpy()
        np.testing.assert_array_equal(np.asarray(node.metadata["delay_steps"]), steps)
        np.testing.assert_allclose(node.delay, steps.astype(np.float64) * dt, rtol=1e-12)
        assert steps.min() >= 1
    elif model.cfg.recurrent == "taps":
        for k in range(2, rec.n_taps + 1):
            np.testing.assert_allclose(graph.nodes[f"delay1_lag{k}"].delay, (k - 1) * dt, rtol=1e-12)
        assert "delay1_lag1" not in graph.nodes


def test_lif_tau_is_the_forward_euler_conversion_of_beta(exported):
    _, model, _, graph = exported
    dt = float(graph.metadata["dt"])
    lif = graph.nodes["lif0"]
    beta = model.layers[0].lif.beta
    assert float(lif.metadata["beta"]) == beta
    np.testing.assert_allclose(lif.tau, dt / (1 - beta))
    np.testing.assert_allclose(dt * lif.r / lif.tau, 1.0)  # input gain of one Euler step
    np.testing.assert_array_equal(lif.v_threshold, model.cfg.threshold)
    np.testing.assert_array_equal(lif.v_reset, 0.0)
    assert lif.metadata["reset"] == model.cfg.reset


# -- the graph means the model without delrec metadata: a minimal discrete-time NIR interpreter ----

def simulate(graph, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Run ``graph`` on ``x`` (T, B, n_in) in float64 with the conventions the export documents:
    forward-Euler neurons, Delay = round(delay / dt) steps, one step of latency on the edge that closes a
    cycle, edges into a node summed. Reads only NIR fields, plus the reset mode from node metadata."""
    dt = float(graph.metadata["dt"])
    nodes, edges = graph.nodes, [tuple(e) for e in graph.edges]
    kind = {n: type(node).__name__ for n, node in nodes.items()}
    f64 = lambda a: torch.from_numpy(np.asarray(a, dtype=np.float64))  # noqa: E731
    # depth-first from the input; an edge back to a node still on the path closes a cycle
    order, back, state = [], set(), {}

    def visit(n):
        state[n] = "open"
        for a, b in edges:
            if a == n and state.get(b) == "open":
                back.add((a, b))
            elif a == n and b not in state:
                visit(b)
        state[n] = "done"
        order.append(n)

    visit("input")
    order.reverse()
    incoming = {n: [(a, (a, b) in back) for a, b in edges if b == n] for n in nodes}
    p = {}
    for n, node in nodes.items():
        if kind[n] in ("Affine", "Linear", "Conv1d"):
            p[n] = (f64(node.weight), f64(node.bias) if kind[n] != "Linear" else None)
        elif kind[n] in ("LIF", "LI"):
            a = dt / f64(node.tau)
            p[n] = (1 - a, a * f64(node.r), a * f64(node.v_leak),
                    f64(node.v_threshold) if kind[n] == "LIF" else None,
                    f64(node.v_reset) if kind[n] == "LIF" else None)
        elif kind[n] == "Delay":
            p[n] = torch.from_numpy(np.floor(np.asarray(node.delay) / dt + 0.5).astype(np.int64))
    t_steps, batch, _ = x.shape
    value = dict.fromkeys(nodes)
    v = {n: 0.0 for n in nodes if kind[n] in ("LIF", "LI")}
    lines = {n: [] for n in nodes if kind[n] == "Delay"}
    out, spikes = [], {n: [] for n in nodes if kind[n] == "LIF"}
    for t in range(t_steps):
        prev = dict(value)
        for n in order:
            ins = [(prev if is_back else value)[a] for a, is_back in incoming[n]]
            ins = [i for i in ins if i is not None]
            i_in = sum(ins[1:], ins[0]) if ins else None
            k = kind[n]
            if k == "Input":
                value[n] = x[t].double()
            elif k in ("Affine", "Linear"):
                w, b = p[n]
                value[n] = i_in @ w.T + (b if b is not None else 0.0)
            elif k == "Conv1d":
                w, b = p[n]
                value[n] = F.conv1d(i_in.reshape(batch, w.shape[1], -1), w, b, padding=int(nodes[n].padding))
            elif k == "Flatten":
                value[n] = i_in.reshape(batch, -1)
            elif k == "Delay":
                d = p[n]
                lines[n].insert(0, i_in)
                hist = torch.stack(lines[n] + [torch.zeros_like(i_in)] * (int(d.max()) + 1))
                value[n] = torch.gather(hist, 0, d.view(1, 1, -1).expand(1, batch, -1))[0]
            elif k in ("LIF", "LI"):
                decay, gain, leak, thr, v_reset = p[n]
                h = decay * v[n] + gain * (i_in if i_in is not None else 0.0) + leak
                if k == "LI":
                    v[n] = value[n] = h
                    continue
                s = (h >= thr).double()  # the export's documented spike condition
                if nodes[n].metadata.get("reset") == "subtract":
                    v[n] = h - s * thr
                else:
                    v[n] = torch.where(s > 0, v_reset, h)
                value[n] = s
                spikes[n].append(s)
            elif k == "Output":
                value[n] = i_in
                out.append(i_in)
    return torch.stack(out), {n: torch.stack(s) for n, s in spikes.items()}


def test_graph_alone_simulates_to_the_model(exported):
    """An interpreter that reads only NIR fields (BatchNorm folded) reproduces the model's spikes."""
    name, model, _, graph = exported
    x = spikes_in(model)
    with torch.no_grad():
        ref = model(x)
    readout, spikes = simulate(graph, x)
    for i, s in enumerate(ref.spikes):
        assert torch.equal(spikes[f"lif{i}"], s.double()), f"layer {i} spikes differ"
    np.testing.assert_allclose(readout.numpy(), ref.readout.double().numpy(), rtol=1e-4, atol=1e-4)


def test_the_interpreter_notices_a_wrong_delay():
    """Guard for the check above: one step more on every delay changes the recurrent layer's spikes."""
    model = tiny_model()
    graph = nirexport.to_nir(model)
    x = spikes_in(model)
    node = graph.nodes["delay1"]
    node.delay = node.delay + float(graph.metadata["dt"])
    _, spikes = simulate(graph, x)
    with torch.no_grad():
        assert not torch.equal(spikes["lif1"], model(x).spikes[1].double())


# -- refusals and options ---------------------------------------------------------------------

def test_edited_graph_is_refused(tmp_path):
    model = tiny_model()
    graph = nirexport.to_nir(model)
    graph.nodes["lif0"].v_threshold = graph.nodes["lif0"].v_threshold * 2
    with pytest.raises(ValueError, match="v_threshold"):
        nirexport.from_nir(graph)
    graph = nirexport.to_nir(model)
    graph.edges.remove(("rec1_flatten", "lif1"))
    with pytest.raises(ValueError, match="edges"):
        nirexport.from_nir(graph)
    graph = nirexport.to_nir(model)
    graph.nodes["fc0"].metadata = {}
    with pytest.raises(ValueError, match="BatchNorm"):
        nirexport.from_nir(graph)


def test_foreign_graph_is_refused():
    g = nir.NIRGraph.from_list(nir.Affine(weight=np.ones((2, 3), np.float32), bias=np.zeros(2, np.float32)),
                               nir.LIF(tau=np.ones(2), r=np.ones(2), v_leak=np.zeros(2), v_threshold=np.ones(2)))
    with pytest.raises(ValueError, match="not a delrec-edge NIR graph"):
        nirexport.from_nir(g)


def test_bad_dt_is_refused():
    with pytest.raises(ValueError, match="dt"):
        nirexport.to_nir(tiny_model(), 0.0)


def test_dt_and_preset_options(tmp_path):
    model = tiny_model()
    graph = nirexport.to_nir(model, 0.001)
    assert float(graph.metadata["dt"]) == 0.001 and "preset" not in graph.metadata
    np.testing.assert_allclose(graph.nodes["lif0"].tau, 0.001 / (1 - model.layers[0].lif.beta))
    back = nirexport.from_nir(graph)
    x = spikes_in(model)
    with torch.no_grad():
        assert torch.equal(model(x).readout, back(x).readout)


def test_feedforward_only_model_passes_nir_type_check(tmp_path):
    """Without a recurrent layer there is no (N,) -> (C, W) edge, so plain nir.read type-checks it."""
    model = tiny_model(recurrent_layers=(False, False))
    path = tmp_path / "ff.nir"
    nirexport.write_nir(model, path)
    graph = nir.read(path)  # default type_check=True
    back = nirexport.from_nir(graph)
    x = spikes_in(model)
    with torch.no_grad():
        assert torch.equal(model(x).readout, back(x).readout)


def test_export_does_not_disturb_the_global_rng():
    graph = nirexport.to_nir(tiny_model())
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    nirexport.from_nir(graph)
    assert torch.equal(torch.rand(3), expected)


# -- the command ------------------------------------------------------------------------------

def _cli(argv):
    from pytrain.cli import nir as nir_command

    parser = argparse.ArgumentParser(prog="delrec-edge")
    sub = parser.add_subparsers(dest="command", required=True)
    nir_command.register(sub)
    args = parser.parse_args(argv)
    return args.func(args)


def _run_folder(tmp_path, model):
    run = tmp_path / "run"
    run.mkdir()
    save_torch_atomic(run / "model.pt", model_record(model, TrainConfig(), {"preset": "tiny"}))
    return run


def test_command_writes_a_file_that_rebuilds_the_model(tmp_path, capsys):
    model = tiny_model()
    run = _run_folder(tmp_path, model)
    out = tmp_path / "out" / "model.nir"
    assert _cli(["export-nir", str(run), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "bit-exact" in text and "Delay" in text
    assert [p.name for p in out.parent.iterdir()] == ["model.nir"]  # no temporary file left behind
    assert nirexport.read_graph(out).metadata["preset"] == "tiny"
    x = spikes_in(model)
    with torch.no_grad():
        assert torch.equal(model(x).readout, nirexport.read_nir(out)(x).readout)


def test_command_dt_option(tmp_path):
    run = _run_folder(tmp_path, tiny_model())
    out = tmp_path / "m.nir"
    assert _cli(["export-nir", str(run), "--out", str(out), "--dt-ms", "1", "--no-verify"]) == 0
    assert float(nirexport.read_graph(out).metadata["dt"]) == pytest.approx(0.001)


@pytest.mark.parametrize("case", ["missing-run", "out-is-dir", "bad-dt"])
def test_command_bad_input_is_one_line_user_error(tmp_path, case):
    run = _run_folder(tmp_path, tiny_model())
    argv = {
        "missing-run": ["export-nir", str(tmp_path / "nope"), "--out", str(tmp_path / "m.nir")],
        "out-is-dir": ["export-nir", str(run), "--out", str(tmp_path)],
        "bad-dt": ["export-nir", str(run), "--out", str(tmp_path / "m.nir"), "--dt-ms", "-1"],
    }[case]
    with pytest.raises(UserError) as exc:
        _cli(argv)
    assert "\n" not in str(exc.value)
    assert not (tmp_path / "m.nir").exists()
