"""Run the generated C of one model in a process of its own and record everything it computes.

Sanitizer builds (``BuildOptions(sanitize=True)``) load only into a process started with the ASan runtime
preloaded (:func:`codegen.verify.hostbuild.sanitizer_env`), and a sanitizer finding aborts that process; so tests
run them here, in a subprocess, and compare the recorded outputs with the reference model::

    python -m codegen.verify.hostworker MODEL.int.npz PREFIX INPUTS.npy OUTPUTS.npz [--reference-kernels]
                                 [--sanitize] [--optimize=-O1]

``INPUTS.npy`` holds one sample of counts, (T, n_inputs) integers in 0..255. From a fresh state the worker
traces all T steps, then asks ``<prefix>_predict`` for the class of that state and runs ``<prefix>_classify``
on the same sample. ``OUTPUTS.npz`` (plain arrays, no pickles) holds::

    v<i>, spikes<i>     (T, N_i) int32 / uint8   layer i's membranes and spikes after every step
    head                (T, n_layers) uint32     ring slot the next step writes (0 without recurrence)
    u, score            (T, K) int32 / int64     readout state and class scores after every step
    predict             ()  int64                <prefix>_predict after the last step
    classify            ()  int64                the class <prefix>_classify returns
    classify_scores     (K,) int64               the scores it writes

With ``--audio`` (a model with a front end), ``INPUTS.npy`` holds int16 PCM, (n,), fed in the pieces of
``--chunks CHUNKS.npy`` (sizes summing to n; default one piece) from a fresh state through ``<prefix>_hear``, then
from another fresh state through ``<prefix>_listen``. ``OUTPUTS.npz`` then holds ``bins`` (nb, C) and, after every
piece, ``ring``, ``pos``, ``fill``, ``floor``, ``peak``, ``v``, ``refractory``, ``counts``, ``prev`` (``HearTrace``), and after
every network step ``listen_counts``, ``listen_floor``, ``listen_v``, ``u``, ``score`` (``ListenTrace``).

The exit status is 0 on success and non-zero on any error (a sanitizer finding aborts the process).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m codegen.verify.hostworker", description=__doc__.split("\n\n")[0])
    p.add_argument("model", type=Path, help="the integer model file (.int.npz)")
    p.add_argument("prefix", help="C name prefix of the generated code")
    p.add_argument("inputs", type=Path, help=".npy of input counts, (T, n_inputs)")
    p.add_argument("outputs", type=Path, help=".npz to write")
    p.add_argument("--reference-kernels", action="store_true", help="build with -DDELREC_REFERENCE_KERNELS")
    p.add_argument("--portable-kernels", action="store_true", help="build with -DDELREC_PORTABLE_KERNELS")
    p.add_argument("--sanitize", action="store_true", help="build with the address and undefined-behaviour sanitizers")
    p.add_argument("--optimize", default="-O2", help="optimization flag, written --optimize=-O1 (default -O2)")
    p.add_argument("--audio", action="store_true", help="INPUTS.npy is int16 PCM for the front end")
    p.add_argument("--chunks", type=Path, default=None, help=".npy of piece sizes for --audio")
    return p


def run(model: Path, prefix: str, inputs: np.ndarray, options) -> dict[str, np.ndarray]:
    """Build (or reuse from the cache) the C of ``model`` and record one sample; returns the output arrays."""
    from ..generator.emit import generate
    from ..integer.modelfile import load_network
    from .hostbuild import build_host_model

    plan, files = generate(load_network(model), prefix)
    hm = build_host_model(plan, files, options)
    state = hm.new_state()
    trace = hm.trace(state, inputs)
    predicted = getattr(hm.lib, f"{prefix}_predict")(state)
    cls, scores = hm.classify(inputs)
    out = {f"v{i}": v for i, v in enumerate(trace.v)}
    out.update({f"spikes{i}": s for i, s in enumerate(trace.spikes)})
    out.update(head=trace.head, u=trace.u, score=trace.score, classify_scores=scores)
    out.update(predict=np.int64(predicted), classify=np.int64(cls))
    return out


def run_audio(model: Path, prefix: str, pcm: np.ndarray, chunks, options) -> dict[str, np.ndarray]:
    """Build (or reuse) the C of ``model`` and record ``pcm`` through hear and listen; returns the output arrays."""
    import dataclasses

    from ..generator.emit import generate
    from ..integer.modelfile import load_network
    from .hostbuild import build_host_model

    plan, files = generate(load_network(model), prefix)
    hm = build_host_model(plan, files, options)
    heard = hm.hear(hm.new_state(), pcm, chunks)
    listened = hm.listen(hm.new_state(), pcm, chunks)
    out = dataclasses.asdict(heard)
    out.update({f"listen_{k}": v for k, v in dataclasses.asdict(listened).items() if k in ("counts", "floor", "v")})
    out.update(u=listened.u, score=listened.score)
    return out


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # This process may run with the ASan runtime preloaded; a compiler it starts for a cache miss must not.
    os.environ.pop("LD_PRELOAD", None)
    from .hostbuild import BuildOptions

    options = BuildOptions(optimize=args.optimize, reference_kernels=args.reference_kernels, sanitize=args.sanitize,
                           portable_kernels=args.portable_kernels)
    inputs = np.load(args.inputs, allow_pickle=False)
    if args.audio:
        chunks = None if args.chunks is None else np.load(args.chunks, allow_pickle=False).tolist()
        arrays = run_audio(args.model, args.prefix, inputs, chunks, options)
        with open(args.outputs, "wb") as f:
            np.savez(f, **arrays)
        return 0
    if inputs.ndim != 2:
        print(f"hostworker: inputs must be (T, n_inputs), got shape {inputs.shape}", file=sys.stderr)
        return 2
    arrays = run(args.model, args.prefix, inputs, options)
    with open(args.outputs, "wb") as f:  # a file object: np.savez would append ".npz" to a bare path
        np.savez(f, **arrays)
    return 0


if __name__ == "__main__":
    sys.exit(main())
