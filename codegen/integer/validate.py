"""Every invariant of an :class:`~codegen.integer.network.IntNetwork`, checked in one place.

:func:`validate_network` is called before a network is written, after it is read, and before anything
plans C or runs the reference model for it: shapes, integer widths, shifts, thresholds, leaks, resets,
delays and class names. Each violation is a ``ValueError`` naming the field (``layers.0.recurrence.delays``).
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from .fixedpoint import LEAK_SHIFT, MAX_SHIFT, int_range
from .frontend import validate_frontend
from .network import RESETS, SPEC_VERSION, SUPPORTED_SPECS, VARIANTS, IntLayer, IntNetwork, IntReadout, IntRecurrence

MAX_DELAY = 65534  # the largest delay whose ring buffer (max_delay + 1 slots) is indexed by a uint16
WEIGHT_BITS = (2, 16)  # weights are stored as int8 or int16
STATE_BITS = (2, 32)  # membranes live in at most a 32-bit register in the C


def is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_int(value: Any, what: str, lo: int | None = None, hi: int | None = None) -> None:
    if not is_int(value):
        raise ValueError(f"{what} must be an integer, got {value!r}")
    if lo is not None and hi is not None and not lo <= value <= hi:
        raise ValueError(f"{what} = {value} is outside {lo}..{hi}")
    if lo is not None and value < lo:
        raise ValueError(f"{what} = {value} must be at least {lo}")


def _check_array(a: Any, what: str, ndim: int) -> None:
    if not isinstance(a, np.ndarray) or not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"{what} must be an integer numpy array")
    if a.ndim != ndim:
        raise ValueError(f"{what} must have {ndim} dimensions, has shape {a.shape}")


def _check_values(a: np.ndarray, bits: int, what: str) -> None:
    lo, hi = int_range(bits)
    if a.size and (int(a.min()) < lo or int(a.max()) > hi):
        raise ValueError(f"{what} has values in {int(a.min())}..{int(a.max())}, outside the {bits}-bit range {lo}..{hi}")


def _check_shift(shift: int, what: str) -> None:
    # negative would need a right shift the arithmetic does not define; the C shifts 32-bit registers
    if not 0 <= shift <= MAX_SHIFT:
        raise ValueError(f"{what} = {shift} must be in 0..{MAX_SHIFT}")


def _check_leak(mul: int, shift: int, where: str) -> None:
    check_int(shift, f"{where}.leak_shift", 0, LEAK_SHIFT)
    check_int(mul, f"{where}.leak_mul", 0, 1 << shift)


def _check_bias(bias: Any, n: int, where: str) -> None:
    _check_array(bias, f"{where}.bias", 1)
    if bias.shape != (n,):
        raise ValueError(f"{where}.bias has shape {bias.shape}, expected ({n},)")
    _check_values(bias, 32, f"{where}.bias")


def _check_recurrence(rec: Any, n: int, v_frac: int, where: str) -> None:
    if not isinstance(rec, IntRecurrence):
        raise ValueError(f"{where} must be an IntRecurrence or None")
    if rec.variant not in VARIANTS:
        raise ValueError(f"{where}.variant {rec.variant!r} is not one of {', '.join(VARIANTS)}")
    check_int(rec.weight_bits, f"{where}.weight_bits", *WEIGHT_BITS)
    check_int(rec.frac, f"{where}.frac")
    _check_shift(v_frac - rec.frac, f"{where} shift (v_frac - frac)")
    w = rec.weight
    _check_array(w, f"{where}.weight", 2 if rec.variant == "dense" else 4 if rec.variant == "taps" else 3)
    if rec.variant == "dense":
        if w.shape != (n, n):
            raise ValueError(f"{where}.weight has shape {w.shape}, dense needs ({n}, {n})")
    else:
        c, c2, k = w.shape[-3:]
        if c < 1 or c2 != c or k % 2 != 1 or n % c != 0:
            raise ValueError(f"{where}.weight has shape {w.shape}: needs (C, C, K) with odd K and C dividing N={n}")
        if rec.variant == "taps" and w.shape[0] < 1:
            raise ValueError(f"{where}.weight has shape {w.shape}: taps needs D >= 1 lags")
    _check_values(w, rec.weight_bits, f"{where}.weight")
    _check_delays(rec.delays, rec.variant, n, where)


def _check_delays(d: Any, variant: str, n: int, where: str) -> None:
    _check_array(d, f"{where}.delays", 1)
    expected = 0 if variant == "taps" else n  # taps read fixed lags 1..D, they own no delays
    if d.shape != (expected,):
        raise ValueError(f"{where}.delays has shape {d.shape}, {variant} needs ({expected},)")
    if d.size and (int(d.min()) < 0 or int(d.max()) > MAX_DELAY):
        raise ValueError(f"{where}.delays must be in 0..{MAX_DELAY}, found {int(d.min())}..{int(d.max())}")
    if variant == "conv-nodelay" and np.any(d != 0):
        raise ValueError(f"{where}.delays must all be zero for conv-nodelay")


def _check_layer(layer: Any, n_in: int, where: str) -> None:
    if not isinstance(layer, IntLayer):
        raise ValueError(f"{where} must be an IntLayer")
    _check_array(layer.weight, f"{where}.weight", 2)
    n, got_in = layer.weight.shape
    if n < 1:
        raise ValueError(f"{where} has no neurons")
    if got_in != n_in:
        raise ValueError(f"{where}.weight takes {got_in} inputs but receives {n_in}")
    check_int(layer.weight_bits, f"{where}.weight_bits", *WEIGHT_BITS)
    check_int(layer.state_bits, f"{where}.state_bits", *STATE_BITS)
    _check_values(layer.weight, layer.weight_bits, f"{where}.weight")
    _check_bias(layer.bias, n, where)
    check_int(layer.weight_frac, f"{where}.weight_frac")
    check_int(layer.v_frac, f"{where}.v_frac")
    _check_shift(layer.v_frac - layer.weight_frac, f"{where} feed-forward shift (v_frac - weight_frac)")
    # a threshold of 0 would fire on silence; above the state maximum it could never be reached
    check_int(layer.threshold, f"{where}.threshold", 1, int_range(layer.state_bits)[1])
    _check_leak(layer.leak_mul, layer.leak_shift, where)
    if layer.reset not in RESETS:
        raise ValueError(f"{where}.reset {layer.reset!r} is not one of {', '.join(RESETS)}")
    if layer.recurrence is not None:
        _check_recurrence(layer.recurrence, n, layer.v_frac, f"{where}.recurrence")


def _check_readout(r: Any, n_in: int) -> None:
    if not isinstance(r, IntReadout):
        raise ValueError("readout must be an IntReadout")
    _check_array(r.weight, "readout.weight", 2)
    k, got_in = r.weight.shape
    if k < 1:
        raise ValueError("readout has no classes")
    if got_in != n_in:
        raise ValueError(f"readout.weight takes {got_in} inputs but the last layer has {n_in} neurons")
    check_int(r.weight_bits, "readout.weight_bits", *WEIGHT_BITS)
    _check_values(r.weight, r.weight_bits, "readout.weight")
    _check_bias(r.bias, k, "readout")
    check_int(r.weight_frac, "readout.weight_frac")
    check_int(r.v_frac, "readout.v_frac")
    _check_shift(r.v_frac - r.weight_frac, "readout shift (v_frac - weight_frac)")
    _check_leak(r.leak_mul, r.leak_shift, "readout")


def _check_header_fields(net: IntNetwork) -> None:
    check_int(net.spec_version, "spec_version")
    if net.spec_version not in SUPPORTED_SPECS:
        raise ValueError(f"unsupported spec_version {net.spec_version} (this version reads "
                         f"{', '.join(map(str, SUPPORTED_SPECS))}; it writes {SPEC_VERSION})")
    if net.spec_version == 1 and net.frontend is not None:
        raise ValueError("spec_version 1 has no audio front end (the front end is spec 2)")
    check_int(net.n_inputs, "n_inputs", 1)
    bin_ms = net.bin_ms
    if isinstance(bin_ms, bool) or not isinstance(bin_ms, (int, float)) or not (math.isfinite(bin_ms) and bin_ms > 0):
        raise ValueError(f"bin_ms must be a positive finite number, got {net.bin_ms!r}")
    if not isinstance(net.classes, tuple) or not all(isinstance(c, str) for c in net.classes):
        raise ValueError("classes must be a tuple of strings")
    if not isinstance(net.meta, dict):
        raise ValueError("meta must be a dict")
    try:
        json.dumps(net.meta, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"meta cannot be stored as JSON: {exc}") from None


def validate_network(net: IntNetwork) -> None:
    """Check every invariant the integer model relies on; raise ``ValueError`` naming the first broken one."""
    if not isinstance(net, IntNetwork):
        raise ValueError("not an IntNetwork")
    _check_header_fields(net)
    if not isinstance(net.layers, tuple) or not net.layers:
        raise ValueError("layers must be a non-empty tuple")
    n_in = net.n_inputs
    for i, layer in enumerate(net.layers):
        _check_layer(layer, n_in, f"layers.{i}")
        n_in = layer.n
    _check_readout(net.readout, n_in)
    if net.classes and len(net.classes) != net.n_classes:
        raise ValueError(f"{len(net.classes)} class names for {net.n_classes} readout rows")
    if net.frontend is not None:
        _check_frontend(net)


def _check_frontend(net: IntNetwork) -> None:
    """The front end is valid, feeds every input and completes one bin per network step."""
    fe = net.frontend
    validate_frontend(fe)
    if fe.n_channels != net.n_inputs:
        raise ValueError(f"the front end has {fe.n_channels} channels but the network takes {net.n_inputs} inputs")
    if abs(fe.hop_ms - net.bin_ms) > 1e-9:
        raise ValueError(f"the front end's hop ({fe.hop} samples = {fe.hop_ms:g} ms at {fe.sample_rate} Hz) differs "
                         f"from the network's bin width ({net.bin_ms:g} ms); they must be equal")
