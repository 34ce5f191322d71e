"""Small valid integer networks with random contents, for tests of anything that consumes an IntNetwork."""

from __future__ import annotations

import dataclasses

import numpy as np

from codegen.integer.fixedpoint import int_range
from codegen.integer.network import RESETS, IntLayer, IntNetwork, IntReadout, IntRecurrence


def _weights(rng: np.random.Generator, shape: tuple[int, ...], bits: int) -> np.ndarray:
    lo, hi = int_range(bits)
    return rng.integers(lo, hi, size=shape, endpoint=True).astype(np.int8 if bits <= 8 else np.int16)


def _recurrence(rng: np.random.Generator, variant: str, n: int, v_frac: int, bits: int) -> IntRecurrence:
    channels = 2 if n % 2 == 0 else 1
    kernel = 3
    if variant == "dense":
        weight = _weights(rng, (n, n), bits)
    elif variant == "taps":
        weight = _weights(rng, (2, channels, channels, kernel), bits)
    else:
        weight = _weights(rng, (channels, channels, kernel), bits)
    if variant == "taps":
        delays = np.zeros(0, dtype=np.int32)
    elif variant == "conv-nodelay":
        delays = np.zeros(n, dtype=np.int32)
    else:
        delays = rng.integers(0, 6, size=n).astype(np.int32)
    return IntRecurrence(variant, weight, v_frac - int(rng.integers(0, 3)), delays, weight_bits=bits)


def _layer(rng: np.random.Generator, variant: str | None, n_in: int, n: int, bits: int, rec_bits: int) -> IntLayer:
    weight_frac = int(rng.integers(4, 8))
    v_frac = weight_frac + int(rng.integers(0, 4))
    leak_shift = int(rng.integers(0, 16))
    return IntLayer(
        weight=_weights(rng, (n, n_in), bits),
        weight_frac=weight_frac,
        bias=rng.integers(-1000, 1000, size=n).astype(np.int32),
        v_frac=v_frac,
        threshold=int(rng.integers(1, 2000)),
        leak_mul=int(rng.integers(0, 1 << leak_shift, endpoint=True)),
        leak_shift=leak_shift,
        reset=RESETS[int(rng.integers(len(RESETS)))],
        recurrence=None if variant is None else _recurrence(rng, variant, n, v_frac, rec_bits),
        weight_bits=bits,
    )


def tiny_network(
    variant: str | None,
    n_in: int = 4,
    n: int = 6,
    *,
    n_layers: int = 1,
    n_classes: int = 3,
    weight_bits: int = 8,
    rec_weight_bits: int | None = None,
    seed: int = 0,
) -> IntNetwork:
    """A valid IntNetwork: ``n_layers`` layers of ``n`` neurons with recurrence ``variant`` (None: feed-forward).

    Contents are random integers from ``numpy.random.default_rng(seed)``, so a seed fixes the network.
    Conv and taps kernels have K = 3 and C = 2 channels when ``n`` is even, else 1.
    """
    return layered_network(variant, n_in, (n,) * n_layers, n_classes=n_classes, weight_bits=weight_bits,
                           rec_weight_bits=rec_weight_bits, seed=seed)


def layered_network(
    variant: str | None,
    n_in: int,
    widths: tuple[int, ...],
    *,
    n_classes: int = 3,
    weight_bits: int = 8,
    rec_weight_bits: int | None = None,
    seed: int = 0,
) -> IntNetwork:
    """As :func:`tiny_network`, with one layer per entry of ``widths`` (its neuron count)."""
    rng = np.random.default_rng(seed)
    rec_bits = weight_bits if rec_weight_bits is None else rec_weight_bits
    ins = (n_in, *widths[:-1])
    layers = tuple(_layer(rng, variant, a, b, weight_bits, rec_bits) for a, b in zip(ins, widths))
    weight_frac = int(rng.integers(4, 8))
    readout = IntReadout(
        weight=_weights(rng, (n_classes, widths[-1]), weight_bits),
        weight_frac=weight_frac,
        bias=rng.integers(-1000, 1000, size=n_classes).astype(np.int32),
        v_frac=weight_frac + int(rng.integers(0, 4)),
        leak_mul=int(rng.integers(0, 1 << 15, endpoint=True)),
        leak_shift=15,
        weight_bits=weight_bits,
    )
    return IntNetwork(
        n_inputs=n_in,
        layers=layers,
        readout=readout,
        bin_ms=4.0,
        classes=tuple(f"class{k}" for k in range(n_classes)),
        meta={"preset": "tiny", "source_checkpoint_sha256": "0" * 64, "seed": seed},
    )


# (n0, n1, seed): partially used spike words, rows that are not whole blocks (ending 8, 16 or 24 columns after
# the last 32); seeds whose weights keep both layers spiking
WIDTH_PAIRS = ((31, 33, 31), (63, 65, 63), (100, 257, 100), (20, 88, 23))


def width_model(n0: int, n1: int, bits: int, seed: int) -> IntNetwork:
    """Two layers of ``n0`` and ``n1`` neurons (the second with a conv recurrence and per-neuron delays 0..4), 7
    inputs, 3 classes, ``bits``-bit weights (8 or 4) chosen so that both layers spike on small input counts."""
    net = tiny_network("conv", n_in=7, n=n0, n_layers=2, seed=seed, weight_bits=bits)
    rng = np.random.default_rng(seed)
    lo, hi = int_range(bits)
    dtype = net.layers[1].weight.dtype
    rec = net.layers[1].recurrence
    layer1 = dataclasses.replace(
        net.layers[1], weight=rng.integers(lo, hi, (n1, n0), endpoint=True).astype(dtype), bias=np.zeros(n1, np.int32),
        threshold=60, leak_mul=1, leak_shift=1,
        recurrence=dataclasses.replace(rec, weight=rec.weight[:1, :1], delays=rng.integers(0, 5, n1).astype(np.int32)),
    )
    layer0 = dataclasses.replace(net.layers[0], threshold=40, leak_mul=1, leak_shift=1, bias=np.zeros(n0, np.int32))
    readout = dataclasses.replace(net.readout, weight=rng.integers(lo, hi, (3, n1), endpoint=True).astype(dtype))
    return dataclasses.replace(net, layers=(layer0, layer1), readout=readout)
