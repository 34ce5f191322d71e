r"""Export the float model to NIR (Neuromorphic Intermediate Representation) and rebuild it from NIR.

``to_nir(model, dt_s)`` describes the **evaluation-mode** network (delays rounded half up, no dropout,
BatchNorm running statistics) as a ``nir.NIRGraph``; ``from_nir(graph)`` rebuilds a :class:`DelRecSNN`
whose forward output equals the original's bit for bit. ``write_nir``/``read_nir`` do the same through
a NIR HDF5 file (``nir.write``/``nir.read``). All four recurrent variants export.

Graph, hidden layer ``i`` with ``N`` neurons, ``C`` channels, ``W = N / C``::

    input -> fc0 (Affine) -> lif0 (LIF) -> fc1 (Affine) -> lif1 (LIF) -> ... -> fc_out (Affine) -> readout (LI) -> output

    recurrent layer i, a cycle back into lif{i} (NIR sums the edges entering a node):
      conv          lif{i} -> delay{i} (Delay) -> rec{i} (Conv1d) -> rec{i}_flatten (Flatten) -> lif{i}
      dense         lif{i} -> delay{i} (Delay) -> rec{i} (Linear)                             -> lif{i}
      conv-nodelay  lif{i}                     -> rec{i} (Conv1d) -> rec{i}_flatten (Flatten) -> lif{i}
      taps          for lag k = 1..D, one branch:
                    lif{i} [-> delay{i}_lag{k} (Delay, all (k-1) dt), k >= 2] -> rec{i}_lag{k} (Conv1d)
                           -> rec{i}_lag{k}_flatten (Flatten) -> lif{i}

``Linear`` replaces ``Affine`` where there is no bias (no bias and no BatchNorm); ``readout`` (LI) is
absent for the ``linear`` readout, whose per-step logits are the output.

Conventions (also written into the graph metadata, which NIR carries but does not interpret):

* **Time** is in seconds. ``dt`` (graph metadata ``dt``, default ``bin_ms / 1000``) is the step.
* **LIF.** The model's ``h = beta v + x`` is the forward-Euler step of NIR's
  ``tau dv/dt = (v_leak - v) + R I`` with ``tau = dt / (1 - beta)`` (= ``tau_steps * dt``),
  ``R = tau / dt = 1 / (1 - beta)``, ``v_leak = 0``: ``v <- (1 - dt/tau) v + (dt R / tau) I``. This is the
  snnTorch/Spyx convention; a simulator that integrates the ODE exactly decays by ``exp(-dt/tau)``
  instead, which is not ``beta``. The exact ``beta`` is kept in node metadata ``beta``.
* **Spikes** fire on ``h >= threshold`` (NIR writes ``v > v_threshold``; node metadata
  ``spike_condition``). Reset to zero is ``v_reset = 0``. Reset by subtraction has no NIR primitive: the
  field still says ``v_reset = 0`` (what a metadata-unaware consumer will run, a hard reset) and node and
  graph metadata say ``reset = "subtract"``; ``from_nir`` restores it exactly.
* **Delays.** A spike of neuron ``j`` at step ``t`` reaches its targets at step ``t + 1 + d_j``. The
  Delay node holds ``d_j * dt`` (seconds, one per presynaptic neuron); the remaining step is the latency of
  the recurrent cycle itself, which discrete-time NIR simulators realise by feeding step ``t``'s output
  back at step ``t + 1`` (graph metadata ``recurrent_cycle_latency_steps = 1``). A consumer that
  evaluates a cycle without latency must add ``dt`` to every delay. The integer steps are in node
  metadata ``delay_steps`` (authoritative: ``d * dt / dt`` need not round-trip in floating point).
* **Conv1d** runs along the neuron index, neurons channel-major: the ``(N,)`` vector is read as
  ``(C, W)`` row-major, kernel ``(C, C, K)``, stride 1, explicit zero padding ``(K - 1) / 2``, no bias
  (a zero ``bias``), and ``Flatten`` turns the ``(C, W)`` result back into ``(N,)``. NIR has no reshape
  (unflatten) primitive for the ``(N,) -> (C, W)`` step, so the edge into the Conv1d does not pass NIR's
  type check: a graph with a recurrent layer is built with ``type_check=False`` and must be read with
  ``nir.read(path, type_check=False)`` (``read_graph`` does).
* **BatchNorm** is folded into the Affine (in float64, stored as float32). The unfolded Linear and
  BatchNorm parameters ride in the Affine's metadata, because float32 ``W'x + b'`` is not bit-equal to
  ``BN(Wx + b)``; ``from_nir`` uses them.
* The full :class:`ModelConfig` is in graph metadata ``config`` (JSON), so training-only settings
  (surrogate, dropout, delay init) survive the round trip although NIR has no use for them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import nir
import numpy as np
import torch

from codegen.common.atomic import write_bytes_atomic
from codegen.common.version import __version__
from pytrain.export.bnfold import fold_batchnorm
from pytrain.model import delays as dl
from pytrain.model.config import ModelConfig
from pytrain.model.network import DelRecSNN

FORMAT = "delrec-edge-nir"
VERSION = 1


# -- layout: node names, types and edges, shared by export and import ---------------------------

def _layout(cfg: ModelConfig) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """Expected ``{node name: NIR type name}`` and edges of the graph for ``cfg``."""
    nodes: dict[str, str] = {"input": "Input"}
    edges: list[tuple[str, str]] = []
    ff_type = "Affine" if (cfg.bias or cfg.batchnorm) else "Linear"
    prev = "input"
    for i, rec in enumerate(cfg.recurrent_layers):
        fc, lif = f"fc{i}", f"lif{i}"
        nodes[fc], nodes[lif] = ff_type, "LIF"
        edges += [(prev, fc), (fc, lif)]
        if rec:
            for _lag, chain in _recurrent_branches(cfg, i):
                prev_node = lif
                for name, kind in chain:
                    nodes[name] = kind
                    edges.append((prev_node, name))
                    prev_node = name
                edges.append((prev_node, lif))
        prev = lif
    nodes["fc_out"] = "Affine" if cfg.bias else "Linear"
    edges.append((prev, "fc_out"))
    prev = "fc_out"
    if cfg.readout == "leaky":
        nodes["readout"] = "LI"
        edges.append(("fc_out", "readout"))
        prev = "readout"
    nodes["output"] = "Output"
    edges.append((prev, "output"))
    return nodes, edges


def _recurrent_branches(cfg: ModelConfig, i: int) -> list[tuple[int, list[tuple[str, str]]]]:
    """``[(lag, [(node, type), ...])]``: the chains from ``lif{i}`` back into ``lif{i}``."""
    conv_tail = lambda name: [(name, "Conv1d"), (f"{name}_flatten", "Flatten")]  # noqa: E731
    if cfg.recurrent == "conv":
        return [(1, [(f"delay{i}", "Delay"), *conv_tail(f"rec{i}")])]
    if cfg.recurrent == "dense":
        return [(1, [(f"delay{i}", "Delay"), (f"rec{i}", "Linear")])]
    if cfg.recurrent == "conv-nodelay":
        return [(1, conv_tail(f"rec{i}"))]
    branches = []
    for k in range(1, cfg.n_taps + 1):
        delay = [(f"delay{i}_lag{k}", "Delay")] if k >= 2 else []
        branches.append((k, [*delay, *conv_tail(f"rec{i}_lag{k}")]))
    return branches


# -- export ------------------------------------------------------------------------------------

def _f32(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().to(torch.float32).numpy().copy()


def _feedforward_node(linear: torch.nn.Linear, bn: torch.nn.BatchNorm1d | None, kind: str):
    if bn is None:
        w = _f32(linear.weight)
        if kind == "Linear":
            return nir.Linear(weight=w)
        b = _f32(linear.bias) if linear.bias is not None else np.zeros(w.shape[0], np.float32)
        return nir.Affine(weight=w, bias=b)
    w, b = fold_batchnorm(linear, bn)
    meta = {
        "batchnorm_folded": True,
        "fc_weight": _f32(linear.weight),
        "bn_weight": _f32(bn.weight),
        "bn_bias": _f32(bn.bias),
        "bn_running_mean": _f32(bn.running_mean),
        "bn_running_var": _f32(bn.running_var),
        "bn_eps": float(bn.eps),
    }
    if linear.bias is not None:
        meta["fc_bias"] = _f32(linear.bias)
    return nir.Affine(weight=w.to(torch.float32).numpy(), bias=b.to(torch.float32).numpy(), metadata=meta)


def _lif_node(n: int, beta: float, threshold: float, reset: str, dt: float):
    tau = dt / (1.0 - beta)
    full = lambda v: np.full(n, v, dtype=np.float64)  # noqa: E731
    return nir.LIF(
        tau=full(tau), r=full(1.0 / (1.0 - beta)), v_leak=full(0.0), v_threshold=full(threshold),
        v_reset=full(0.0),
        metadata={"beta": float(beta), "reset": reset, "spike_condition": "v >= v_threshold"},
    )


def _delay_node(steps: np.ndarray, dt: float):
    steps = np.asarray(steps, dtype=np.int64)
    return nir.Delay(delay=steps.astype(np.float64) * dt, metadata={"delay_steps": steps, "dt": dt})


def _conv_nodes(kernel: torch.Tensor, n: int) -> tuple:
    c, _, k = kernel.shape
    conv = nir.Conv1d(
        input_shape=n // c, weight=_f32(kernel), stride=1, padding=(k - 1) // 2, dilation=1, groups=1,
        bias=np.zeros(c, np.float32),
        metadata={"neuron_layout": "channel-major: input (N,) read as (C, N/C) row-major"},
    )
    return conv, nir.Flatten(input_type={"input": np.array([c, n // c])}, start_dim=0, end_dim=-1)


def to_nir(model: DelRecSNN, dt_s: float | None = None, *, preset: str | None = None) -> nir.NIRGraph:
    """The evaluation-mode ``model`` as a NIR graph with step ``dt_s`` seconds (default: ``bin_ms``).

    Conventions in the module docstring. Raises ``ValueError`` for a bad ``dt_s``.
    """
    cfg = model.cfg
    dt = cfg.bin_ms / 1000.0 if dt_s is None else float(dt_s)
    if not (math.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be a positive number of seconds, got {dt_s!r}")
    kinds, edges = _layout(cfg)
    nodes: dict[str, object] = {"input": nir.Input(input_type=np.array([cfg.n_inputs]))}
    for i, layer in enumerate(model.layers):
        n = layer.fc.out_features
        nodes[f"fc{i}"] = _feedforward_node(layer.fc, layer.bn, kinds[f"fc{i}"])
        nodes[f"lif{i}"] = _lif_node(n, layer.lif.beta, layer.lif.threshold, layer.lif.reset, dt)
        rec = layer.rec
        if rec is None:
            continue
        if rec.variant in ("conv", "dense"):
            steps = dl.integer_delays(rec.delays).cpu().numpy()
            nodes[f"delay{i}"] = _delay_node(steps, dt)
        if rec.variant == "dense":
            nodes[f"rec{i}"] = nir.Linear(weight=_f32(rec.weight))
        elif rec.variant in ("conv", "conv-nodelay"):
            nodes[f"rec{i}"], nodes[f"rec{i}_flatten"] = _conv_nodes(rec.weight, n)
        else:  # taps: lag k reads S(t - k), i.e. a Delay of k - 1 steps plus the cycle's one step
            for k in range(1, rec.n_taps + 1):
                if k >= 2:
                    nodes[f"delay{i}_lag{k}"] = _delay_node(np.full(n, k - 1), dt)
                nodes[f"rec{i}_lag{k}"], nodes[f"rec{i}_lag{k}_flatten"] = _conv_nodes(rec.weight[k - 1], n)
    nodes["fc_out"] = _feedforward_node(model.fc_out, None, kinds["fc_out"])
    if cfg.readout == "leaky":
        beta = float(model.readout_beta)
        full = lambda v: np.full(cfg.n_classes, v, dtype=np.float64)  # noqa: E731
        nodes["readout"] = nir.LI(
            tau=full(dt / (1.0 - beta)), r=full(1.0 / (1.0 - beta)), v_leak=full(0.0),
            metadata={"beta": beta, "role": "readout membrane trace is the network output"},
        )
    nodes["output"] = nir.Output(output_type=np.array([cfg.n_classes]))
    assert set(nodes) == set(kinds), "layout and export disagree"
    metadata = {
        "format": FORMAT,
        "version": VERSION,
        "producer": f"delrec-edge {__version__}",
        "dt": dt,
        "time_unit": "s",
        "config": json.dumps(cfg.to_dict(), sort_keys=True),
        "recurrent": cfg.recurrent,
        "reset": cfg.reset,
        "readout": cfg.readout,
        "spike_condition": "v >= v_threshold",
        "neuron_discretisation": "forward Euler: tau = dt/(1-beta), r = tau/dt, v_leak = 0; exact beta in node metadata",
        "recurrent_cycle_latency_steps": 1,
        "delay_convention": "a spike at step t arrives at step t + 1 + d; Delay nodes hold d*dt, the cycle adds one step",
        "shape_note": "Conv1d reads the (N,) spike vector as (C, N/C) row-major; NIR has no unflatten, "
                      "so read recurrent graphs with nir.read(path, type_check=False)",
        "evaluation_mode": "delays rounded half up, no dropout, BatchNorm running statistics",
    }
    if preset:
        metadata["preset"] = str(preset)
    # a recurrent layer's (N,) -> (C, W) edge cannot pass NIR's type check (no unflatten primitive)
    type_check = not any(cfg.recurrent_layers)
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata, type_check=type_check)


# -- import ------------------------------------------------------------------------------------

def _text(v) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _array(node, field: str, name: str, shape: tuple) -> torch.Tensor:
    a = np.asarray(getattr(node, field) if not isinstance(node, dict) else node[field])
    if a.shape != shape:
        raise ValueError(f"node {name}: {field} has shape {a.shape}, expected {shape}")
    return torch.from_numpy(np.array(a, dtype=np.float32))


def _meta_array(meta: dict, key: str, name: str, shape: tuple) -> torch.Tensor:
    if key not in meta:
        raise ValueError(f"node {name}: metadata {key!r} is missing (needed for an exact rebuild)")
    return _array(meta, key, name, shape)


def _load_feedforward(node, name: str, linear: torch.nn.Linear, bn: torch.nn.BatchNorm1d | None) -> None:
    n_out, n_in = linear.out_features, linear.in_features
    with torch.no_grad():
        if bn is None:
            linear.weight.copy_(_array(node, "weight", name, (n_out, n_in)))
            if linear.bias is not None:
                linear.bias.copy_(_array(node, "bias", name, (n_out,)))
            return
        meta = node.metadata or {}
        if not meta.get("batchnorm_folded", False):
            raise ValueError(f"node {name}: the unfolded BatchNorm parameters are missing from its metadata; "
                             "cannot rebuild the model exactly")
        linear.weight.copy_(_meta_array(meta, "fc_weight", name, (n_out, n_in)))
        if linear.bias is not None:
            linear.bias.copy_(_meta_array(meta, "fc_bias", name, (n_out,)))
        bn.weight.copy_(_meta_array(meta, "bn_weight", name, (n_out,)))
        bn.bias.copy_(_meta_array(meta, "bn_bias", name, (n_out,)))
        bn.running_mean.copy_(_meta_array(meta, "bn_running_mean", name, (n_out,)))
        bn.running_var.copy_(_meta_array(meta, "bn_running_var", name, (n_out,)))
        bn.eps = float(meta.get("bn_eps", bn.eps))


def _check_neuron(node, name: str, beta: float, n: int, dt: float, threshold: float | None = None) -> None:
    """The NIR fields must still say what the configuration says (nobody edited one without the other)."""
    meta = node.metadata or {}
    if "beta" in meta and float(meta["beta"]) != beta:
        raise ValueError(f"node {name}: beta {float(meta['beta'])!r} differs from the configuration's {beta!r}")
    tau = np.asarray(node.tau, dtype=np.float64)
    if tau.shape != (n,):
        raise ValueError(f"node {name}: tau has shape {tau.shape}, expected {(n,)}")
    if not np.allclose(tau, dt / (1.0 - beta), rtol=1e-6, atol=0.0):
        raise ValueError(f"node {name}: tau does not match the configuration (expected {dt / (1.0 - beta)!r} s)")
    if threshold is not None and not np.all(np.asarray(node.v_threshold, dtype=np.float64) == threshold):
        raise ValueError(f"node {name}: v_threshold differs from the configuration's threshold {threshold!r}")


def _delay_steps(node, name: str, n: int, dt: float) -> torch.Tensor:
    meta = node.metadata or {}
    if "delay_steps" in meta:
        steps = np.asarray(meta["delay_steps"])
    else:
        steps = np.floor(np.asarray(node.delay, dtype=np.float64) / dt + 0.5)
    if steps.shape != (n,):
        raise ValueError(f"node {name}: {steps.size} delays, expected {n}")
    if np.any(steps < 0) or not np.all(steps == np.round(steps)):
        raise ValueError(f"node {name}: delays must be non-negative whole steps")
    if not np.allclose(np.asarray(node.delay, dtype=np.float64), steps * dt, rtol=1e-9, atol=1e-12):
        raise ValueError(f"node {name}: delay field disagrees with metadata delay_steps at dt = {dt}")
    return torch.from_numpy(steps.astype(np.float32))


def from_nir(graph: nir.NIRGraph) -> DelRecSNN:
    """Rebuild the model from a graph written by :func:`to_nir` (evaluation mode).

    Raises ``ValueError`` for a graph that is not a delrec-edge export or that does not match the
    configuration stored in it (different nodes, edges, shapes or neuron parameters).
    """
    meta = getattr(graph, "metadata", None) or {}
    if _text(meta.get("format", "")) != FORMAT:
        raise ValueError("not a delrec-edge NIR graph (graph metadata 'format' is missing); "
                         "only graphs written by delrec-edge export-nir can be rebuilt")
    if int(meta.get("version", -1)) != VERSION:
        raise ValueError(f"unsupported delrec-edge NIR version {meta.get('version')!r}")
    try:
        cfg = ModelConfig.from_dict(json.loads(_text(meta["config"])))
        dt = float(meta["dt"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"graph metadata holds no valid model configuration ({exc})") from None

    kinds, edges = _layout(cfg)
    have = {name: type(node).__name__ for name, node in graph.nodes.items()}
    if have != kinds:
        diff = sorted(set(have.items()) ^ set(kinds.items()))
        raise ValueError(f"graph nodes do not match the stored configuration: {diff[:4]}")
    got_edges = {(str(a), str(b)) for a, b in graph.edges}
    if got_edges != set(edges):
        diff = sorted(got_edges ^ set(edges))
        raise ValueError(f"graph edges do not match the stored configuration: {diff[:4]}")

    with torch.random.fork_rng(devices=[]):  # the random init is overwritten; leave the caller's RNG alone
        model = DelRecSNN(cfg)
    model.eval()
    g = graph.nodes
    for i, layer in enumerate(model.layers):
        n = layer.fc.out_features
        _load_feedforward(g[f"fc{i}"], f"fc{i}", layer.fc, layer.bn)
        _check_neuron(g[f"lif{i}"], f"lif{i}", layer.lif.beta, n, dt, layer.lif.threshold)
        lif_reset = _text((g[f"lif{i}"].metadata or {}).get("reset", cfg.reset))
        if lif_reset != cfg.reset:
            raise ValueError(f"node lif{i}: reset {lif_reset!r} differs from the configuration's {cfg.reset!r}")
        rec = layer.rec
        if rec is None:
            continue
        with torch.no_grad():
            if rec.variant in ("conv", "dense"):
                rec.delays.copy_(_delay_steps(g[f"delay{i}"], f"delay{i}", n, dt))
            if rec.variant == "dense":
                rec.weight.copy_(_array(g[f"rec{i}"], "weight", f"rec{i}", (n, n)))
            elif rec.variant in ("conv", "conv-nodelay"):
                rec.weight.copy_(_conv_weight(g[f"rec{i}"], f"rec{i}", tuple(rec.weight.shape), n))
            else:
                for k in range(1, rec.n_taps + 1):
                    if k >= 2:
                        steps = _delay_steps(g[f"delay{i}_lag{k}"], f"delay{i}_lag{k}", n, dt)
                        if not torch.all(steps == k - 1):
                            raise ValueError(f"node delay{i}_lag{k}: every delay must be {k - 1} steps")
                    rec.weight[k - 1].copy_(_conv_weight(g[f"rec{i}_lag{k}"], f"rec{i}_lag{k}",
                                                         tuple(rec.weight.shape[1:]), n))
    _load_feedforward(g["fc_out"], "fc_out", model.fc_out, None)
    if cfg.readout == "leaky":
        _check_neuron(g["readout"], "readout", float(model.readout_beta), cfg.n_classes, dt)
    return model


def _conv_weight(node, name: str, shape: tuple, n: int) -> torch.Tensor:
    c, _, k = shape
    if int(node.stride) != 1 or int(node.dilation) != 1 or int(node.groups) != 1:
        raise ValueError(f"node {name}: only stride 1, dilation 1, groups 1 are supported")
    padding = _text(node.padding) if isinstance(node.padding, (str, bytes)) else int(node.padding)
    if padding not in ((k - 1) // 2, "same"):
        raise ValueError(f"node {name}: padding {padding!r}, expected {(k - 1) // 2}")
    if node.input_shape is not None and int(np.asarray(node.input_shape).reshape(-1)[0]) != n // c:
        raise ValueError(f"node {name}: input_shape {node.input_shape!r}, expected {n // c}")
    if np.any(np.asarray(node.bias) != 0):
        raise ValueError(f"node {name}: the recurrent convolution has no bias, but the graph's is non-zero")
    return _array(node, "weight", name, shape)


# -- files -------------------------------------------------------------------------------------

def nir_bytes(model: DelRecSNN, dt_s: float | None = None, *, preset: str | None = None) -> tuple[nir.NIRGraph, bytes]:
    """``to_nir(model, dt_s)`` and the bytes of its NIR HDF5 file."""
    import io

    graph = to_nir(model, dt_s, preset=preset)
    buf = io.BytesIO()
    nir.write(buf, graph)
    return graph, buf.getvalue()


def write_nir(model: DelRecSNN, path: Path | str, dt_s: float | None = None, *, preset: str | None = None) -> nir.NIRGraph:
    """Write ``to_nir(model, dt_s)`` as a NIR HDF5 file, atomically (temporary file, then rename)."""
    graph, data = nir_bytes(model, dt_s, preset=preset)
    write_bytes_atomic(Path(path), data)
    return graph


def read_graph(path: Path | str) -> nir.NIRGraph:
    """``nir.read`` without NIR's type check (see the module docstring: no unflatten primitive)."""
    return nir.read(Path(path), type_check=False)


def read_nir(path: Path | str) -> DelRecSNN:
    """Rebuild the model from a NIR file written by :func:`write_nir`."""
    return from_nir(read_graph(path))
