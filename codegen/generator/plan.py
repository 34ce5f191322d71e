"""Everything the generated C needs, computed once from an :class:`~codegen.integer.network.IntNetwork`.

The templates only arrange these values: every constant, array, size and offset is decided here, and
so is the memory map the report prints. Nothing in this module formats C; see :mod:`codegen.generator.emit`.

Layouts (the ones the runtime, ``codegen/generator/runtime/delrec_runtime.h``, documents):

* Spike vectors are bit-packed into ``uint32_t`` words: ``words(n) = ceil(n / 32)``.
* Weight matrices are stored input-major (the transpose of the model file's ``(N, N_in)``), so the fan-out
  of one input is contiguous and an event-driven kernel adds one row per spike. int8 rows are padded with
  zero weights to a multiple of 8 columns; int4 weights are packed two per byte in offset binary
  (``weight + 8``, even neuron in the low nibble), rows padded to a multiple of 8 columns (4 bytes); int16
  rows are not padded. Every matrix records whether its sums may be packed in 16-bit lanes
  (:func:`codegen.integer.overflow.packing`).
* Conv kernels keep the model file's ``[c_out][c_in][k]`` order; taps kernels ``[lag-1][c_out][c_in][k]``.
* The spike ring of a recurrent layer has ``L`` slots (:func:`codegen.integer.refmodel.ring_length`); neuron ``j``
  with delay ``d_j`` reads slot ``head + offset_j (mod L)`` with ``offset_j = L - 1 - d_j``.
"""

from __future__ import annotations

import dataclasses
import keyword
import re
from dataclasses import dataclass, field

import numpy as np

from ..integer.fixedpoint import int_range, reduced_leak, round_half_up
from ..integer.modelfile import network_digest
from ..integer.network import IntLayer, IntNetwork, IntRecurrence
from ..integer.network import MAX_COUNT, SPEC_VERSION
from ..integer.overflow import Packing, packing
from ..integer.overflow import check as overflow_check
from ..integer.refmodel import ring_length
from ..integer.validate import validate_network

LIF_PARAMS_BYTES = 24  # sizeof(delrec_lif_params): six 32-bit fields
MAX_PREFIX = 22  # prefix + "_classify" stays within C99's 31 significant characters of external names

# The generated folder goes on the include path, so <prefix>.h must not shadow a header that the model, the
# runtime or a firmware project includes: the C standard headers and the firmware's own (compared in lower
# case: macOS and Windows file systems ignore case).
RESERVED_HEADERS = frozenset(
    """assert complex ctype errno fenv float inttypes iso646 limits locale math setjmp signal stdalign stdarg
    stdatomic stdbool stddef stdint stdio stdlib stdnoreturn string tgmath threads time uchar wchar wctype
    app_config delrec_port""".split()
)

C_KEYWORDS = frozenset(
    """auto break case char const continue default do double else enum extern float for goto if inline int long
    register restrict return short signed sizeof static struct switch typedef union unsigned void volatile while
    _Bool _Complex _Imaginary bool true false asm""".split()
)


def check_prefix(prefix: str) -> str:
    """``prefix`` if it is a usable C name prefix, else ``ValueError`` saying why."""
    if not isinstance(prefix, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", prefix):
        raise ValueError(f"prefix {prefix!r} must start with a letter and hold only letters, digits and '_'")
    if len(prefix) > MAX_PREFIX:
        raise ValueError(f"prefix {prefix!r} is longer than {MAX_PREFIX} characters")
    if prefix in C_KEYWORDS or keyword.iskeyword(prefix):
        raise ValueError(f"prefix {prefix!r} is a reserved word")
    if prefix.lower().startswith("delrec_") or prefix.lower() == "delrec":
        raise ValueError(f"prefix {prefix!r} collides with the runtime's own 'delrec_' names")
    if prefix.endswith("_"):
        raise ValueError(f"prefix {prefix!r} must not end with '_'")
    if prefix.lower() in RESERVED_HEADERS:
        raise ValueError(f"prefix {prefix!r} would name the generated header {prefix}.h, which hides the standard or "
                         "firmware header of that name on the include path")
    return prefix


def words(n: int) -> int:
    """``uint32_t`` words holding ``n`` spike bits."""
    return (n + 31) // 32


def weight_ctype(bits: int) -> tuple[str, str]:
    """(C type, kernel suffix) of a small weight tensor (conv and taps kernels) with ``bits``-bit values."""
    return ("int8_t", "i8") if bits <= 8 else ("int16_t", "i16")


def matrix_ctype(bits: int) -> tuple[str, str]:
    """(C type, kernel suffix) of a weight matrix: int4 packed two per byte, int8, int16."""
    if bits <= 4:
        return "uint8_t", "i4"
    return weight_ctype(bits)


def membrane_ctype(state_bits: int) -> tuple[str, str]:
    """(C type, kernel suffix) of a membrane saturated to ``state_bits``."""
    return ("int16_t", "s16") if state_bits <= 16 else ("int32_t", "s32")


_SIZES = {"uint8_t": 1, "int8_t": 1, "int16_t": 2, "uint16_t": 2, "int32_t": 4, "uint32_t": 4, "int64_t": 8}


@dataclass(frozen=True)
class ConstArray:
    """One ``static const`` array of the weights file."""

    name: str  # without the prefix: "l0_w"
    ctype: str
    values: np.ndarray  # 1-D, already in C order
    what: str  # comment: what it holds and its layout
    kernels: str = "both"  # "event" / "reference": only in builds with that kernel set (DELREC_REFERENCE_KERNELS)
    aligned: bool = False  # a weight matrix: aligned for the word-wide kernels

    @property
    def nbytes(self) -> int:
        return _SIZES[self.ctype] * int(self.values.size)


@dataclass(frozen=True)
class StateField:
    """One member of the state struct."""

    name: str
    ctype: str
    length: int  # 0: a scalar
    what: str

    @property
    def nbytes(self) -> int:
        return _SIZES[self.ctype] * max(self.length, 1)

    @property
    def align(self) -> int:
        return _SIZES[self.ctype]


@dataclass(frozen=True)
class MatrixPlan:
    """How one weight matrix (N, N_in) is stored and summed: the array, its row stride in array elements, its
    columns (padded neurons) and the packing of its sums."""

    name: str  # array name without the prefix: "l0_w"
    suffix: str  # kernel suffix: "i4", "i8", "i16"
    n: int
    n_in: int
    stride: int
    cols: int
    packing: Packing
    weight_bits: int

    @property
    def limit(self) -> int:
        return self.packing.limit


@dataclass(frozen=True)
class RecurrencePlan:
    kind: str  # "conv", "dense" or "taps" (conv-nodelay is a conv whose every delay is 0)
    variant: str
    weight_type: str
    weight_suffix: str
    scale: int  # 2 ** rec_shift
    slots: int  # ring length L
    channels: int = 0  # conv / taps
    kernel: int = 0
    width: int = 0
    lags: tuple[int, ...] = ()  # taps: 1..D; otherwise the single lag 1 + d when every delay is equal
    gather: bool = False  # per-neuron delays: gather the delayed spikes (not one ring slot)
    groups: int = 0  # gather: number of distinct delays
    tap_stride: int = 0  # taps: elements per lag kernel
    min_delay: int = 0
    max_delay: int = 0
    matrix: MatrixPlan | None = None  # dense: the recurrent weight matrix
    # conv / taps: the event kernels add the taps straight into the feed-forward accumulator. With g the smaller
    # of ff_shift and rec_shift, the current (acc << ff_shift) + (rec << rec_shift) is
    # ((acc << (ff_shift - g)) + (rec << (rec_shift - g))) << g: the feed-forward sums are stored times
    # acc_out_scale, the taps added times acc_scale, and the LIF multiplies by cur_scale (0: not merged)
    acc_scale: int = 0
    acc_out_scale: int = 1
    cur_scale: int = 0


@dataclass(frozen=True)
class LayerPlan:
    index: int
    n: int
    n_in: int
    words: int
    counts_input: bool  # layer 0 reads spike counts, later layers spike bits
    weight_type: str
    weight_suffix: str
    membrane_type: str
    membrane_suffix: str
    ff_scale: int  # 2 ** ff_shift
    leak_mul: int
    leak_shift: int
    v_min: int
    v_max: int
    threshold: int
    subtract: int
    recurrence: RecurrencePlan | None
    arrays: tuple[ConstArray, ...]
    state: tuple[StateField, ...]
    # what the step checks in the state at entry (a never-reset or corrupted state is refused, not used):
    last_word: int  # index of the last spike word (of a vector, and of each ring slot)
    tail_mask: str  # C literal of the bits of the last spike word that hold neurons; "" when all 32 do
    membrane_in_range_check: bool  # the membrane is narrower than its C container, so out-of-range values exist
    matrix: MatrixPlan | None = None  # the feed-forward weight matrix

    @property
    def regions(self) -> dict[str, str]:
        """Names of this layer's profile regions (``/* region: NAME */`` in the step function)."""
        i = self.index
        ff = f"layer {i} {'input counts' if self.counts_input else 'spikes'}"
        return {"ff": ff, "gather": f"layer {i} delay ring", "recurrence": f"layer {i} recurrence",
                "lif": f"layer {i} LIF"}

    @property
    def describe(self) -> str:
        rec = self.recurrence
        if rec is None:
            kind = "no recurrence"
        elif rec.kind == "dense":
            kind = f"dense recurrence, delays {rec.min_delay}..{rec.max_delay}"
        elif rec.kind == "taps":
            kind = f"taps recurrence ({len(rec.lags)} lags, {rec.channels} channels x {rec.width}, kernel {rec.kernel})"
        else:
            kind = f"{rec.variant} recurrence ({rec.channels} channels x {rec.width}, kernel {rec.kernel}), " \
                   f"delays {rec.min_delay}..{rec.max_delay}"
        return f"{self.n} LIF neurons from {self.n_in} {'input counts' if self.counts_input else 'spikes'}, {kind}"


@dataclass(frozen=True)
class ReadoutPlan:
    n: int
    n_in: int
    weight_type: str
    weight_suffix: str
    out_scale: int
    leak_mul: int
    leak_shift: int
    arrays: tuple[ConstArray, ...]
    state: tuple[StateField, ...]
    matrix: MatrixPlan | None = None


READOUT_REGIONS = {"accumulate": "readout spikes", "update": "readout update"}


@dataclass(frozen=True)
class Plan:
    prefix: str
    macro: str  # upper-case prefix for macros
    model_sha256: str
    n_inputs: int
    n_classes: int
    bin_us: int
    classes: tuple[str, ...]
    layers: tuple[LayerPlan, ...]
    readout: ReadoutPlan
    max_n: int  # largest layer (or class count)
    max_words: int
    max_cols: int = 0  # most columns of any matrix (padding included): the int32 scratch accumulators
    max_n_in: int = 0  # most inputs of any matrix: the event list scratch
    meta: dict = field(default_factory=dict)
    frontend: "FrontendPlan | None" = None  # the audio front end (codegen.generator.frontend_plan), if any
    spec_version: int = SPEC_VERSION  # the model file's integer spec (named in the banner)

    @property
    def regions(self) -> list[str]:
        """Every profile region of the step function, in the order it runs."""
        out: list[str] = []
        for layer in self.layers:
            r = layer.regions
            keys = ["ff", "gather", "recurrence", "lif"] if layer.recurrence is not None else ["ff", "lif"]
            out += [r[k] for k in keys]
        return out + list(READOUT_REGIONS.values())

    @property
    def state_fields(self) -> tuple[StateField, ...]:
        """Struct members ordered by decreasing alignment, so the struct has no padding between them."""
        every = [*self.readout.state]
        for layer in self.layers:
            every += layer.state
        if self.frontend is not None:
            every += self.frontend.state
        return tuple(sorted(every, key=lambda f: -f.align))  # stable: same-alignment members keep model order

    @property
    def state_bytes(self) -> int:
        """``sizeof`` the state struct: members sorted by alignment leave padding only at the end."""
        size = sum(f.nbytes for f in self.state_fields)
        align = max(f.align for f in self.state_fields)
        return -(-size // align) * align

    def arrays_for(self, reference_kernels: bool = False) -> tuple[ConstArray, ...]:
        """The arrays one build holds: shared ones plus those of its kernel set."""
        skip = "event" if reference_kernels else "reference"
        return tuple(a for a in self.arrays if a.kernels != skip)

    @property
    def arrays(self) -> tuple[ConstArray, ...]:
        out: list[ConstArray] = []
        for layer in self.layers:
            out += layer.arrays
        return (*out, *self.readout.arrays)

    @property
    def event_capacity(self) -> int:
        """Entries of the event list: every input of any matrix, and twice the input channels (the DSP kernels
        repeat an input count as events while they fit)."""
        return max(self.max_n_in, 2 * self.n_inputs)

    @property
    def matrices(self) -> tuple[MatrixPlan, ...]:
        out = [layer.matrix for layer in self.layers]
        out += [layer.recurrence.matrix for layer in self.layers if layer.recurrence and layer.recurrence.matrix]
        return tuple(m for m in (*out, self.readout.matrix) if m is not None)

    @property
    def scratch_bytes(self) -> int:
        """Stack used by the step function's scratch: two int32 accumulators, one spike vector, the event
        list (row offsets and counts)."""
        return 2 * 4 * self.max_cols + 4 * self.max_words + 4 * self.event_capacity + self.n_inputs


def _transposed(weight: np.ndarray) -> np.ndarray:
    """(N, N_in) -> input-major flat array: element ``j * N + i`` is ``weight[i, j]``."""
    return np.ascontiguousarray(np.asarray(weight).T).reshape(-1)


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def _matrix(weight: np.ndarray, bits: int, name: str, what: str, max_input: int) -> tuple[MatrixPlan, ConstArray]:
    """The stored form of ``weight`` (N, N_in) (see the module docstring) and its plan."""
    w = np.asarray(weight, dtype=np.int64)
    n, n_in = w.shape
    ctype, suffix = matrix_ctype(bits)
    if suffix == "i16":
        cols = stride = n
        values = _transposed(w)
        layout = f"input-major [{n_in}][{n}]"
    else:
        cols = _round_up(n, 8)
        padded = np.zeros((n_in, cols), dtype=np.int64)
        padded[:, :n] = w.T
        if suffix == "i8":
            stride, values = cols, padded.reshape(-1)
            layout = f"input-major [{n_in}][{cols}], {cols - n} zero columns of padding" if cols > n else \
                f"input-major [{n_in}][{n}]"
        else:
            nibbles = padded + 8  # offset binary; the padding holds weight 0
            stride = cols // 2
            values = (nibbles[:, 0::2] | (nibbles[:, 1::2] << 4)).reshape(-1)
            layout = (f"int4 packed two per byte (weight + 8, even neuron in the low nibble), input-major "
                      f"[{n_in}][{stride} bytes]")
    plan = MatrixPlan(name, suffix, n, n_in, stride, cols, packing(w, max_input, bits), bits)
    return plan, ConstArray(name, ctype, values, f"{what}, {layout}; {plan.packing.describe()}", aligned=True)


def _recurrence_plan(rec: IntRecurrence, layer: IntLayer, i: int) -> tuple[RecurrencePlan, list[ConstArray]]:
    wtype, wsuf = weight_ctype(rec.weight_bits)
    slots = ring_length(rec)
    scale = 1 << layer.rec_shift
    arrays: list[ConstArray] = []
    if rec.variant == "taps":
        d, c, _, k = rec.weight.shape
        plan = RecurrencePlan("taps", rec.variant, wtype, wsuf, scale, slots, c, k, layer.n // c,
                              lags=tuple(range(1, d + 1)), tap_stride=c * c * k)
        arrays.append(ConstArray(f"l{i}_r", wtype, rec.weight.reshape(-1),
                                 f"layer {i} taps kernels [lag-1][c_out][c_in][k], lags 1..{d}"))
        return plan, arrays
    delays = np.asarray(rec.delays, dtype=np.int64)
    uniform = bool(np.all(delays == delays[0]))
    lags = (1 + int(delays[0]),) if uniform else ()
    common = dict(lags=lags, gather=not uniform, min_delay=int(delays.min()), max_delay=int(delays.max()))
    if rec.variant == "dense":
        matrix, array = _matrix(rec.weight, rec.weight_bits, f"l{i}_r", f"layer {i} recurrent weights", 1)
        plan = RecurrencePlan("dense", rec.variant, array.ctype, matrix.suffix, scale, slots, **common, matrix=matrix)
        arrays.append(array)
    else:
        c, _, k = rec.weight.shape
        plan = RecurrencePlan("conv", rec.variant, wtype, wsuf, scale, slots, c, k, layer.n // c, **common)
        arrays.append(ConstArray(f"l{i}_r", wtype, rec.weight.reshape(-1),
                                 f"layer {i} recurrent conv kernel [c_out][c_in][k] = [{c}][{c}][{k}]"))
    if not uniform:
        # reference kernels gather neuron by neuron through a table of ring offsets; the default kernels
        # gather one delay group at a time: the ring slot of that lag ANDed with the group's neuron mask
        arrays.append(ConstArray(f"l{i}_off", "uint16_t", slots - 1 - delays,
                                 f"layer {i} ring offsets: L - 1 - delay per neuron (L = {slots})", "reference"))
        groups = np.unique(delays)
        masks = np.zeros((len(groups), words(layer.n)), dtype=np.uint64)
        for g, d in enumerate(groups):
            for j in np.flatnonzero(delays == d):
                masks[g, j // 32] |= np.uint64(1) << np.uint64(j % 32)
        arrays.append(ConstArray(f"l{i}_lags", "uint16_t", groups + 1,
                                 f"layer {i} delay groups: the lag 1 + d of each distinct delay d", "event"))
        arrays.append(ConstArray(f"l{i}_masks", "uint32_t", masks.reshape(-1),
                                 f"layer {i} delay groups: neuron bit masks [group][word]", "event"))
        plan = dataclasses.replace(plan, groups=len(groups))
    return plan, arrays


def _layer_plan(layer: IntLayer, i: int) -> LayerPlan:
    vtype, vsuf = membrane_ctype(layer.state_bits)
    matrix, weights = _matrix(layer.weight, layer.weight_bits, f"l{i}_w", f"layer {i} feed-forward weights",
                              MAX_COUNT if i == 0 else 1)
    arrays = [
        weights,
        ConstArray(f"l{i}_b", "int32_t", np.asarray(layer.bias), f"layer {i} bias at the membrane scale"),
    ]
    state = [
        StateField(f"v{i}", vtype, layer.n, f"layer {i} membranes ({layer.state_bits}-bit)"),
        StateField(f"spk{i}", "uint32_t", words(layer.n), f"layer {i} spikes of the last step, bit-packed"),
    ]
    rec = None
    if layer.recurrence is not None:
        rec, rec_arrays = _recurrence_plan(layer.recurrence, layer, i)
        if rec.kind != "dense":
            g = min(layer.ff_shift, layer.rec_shift)
            rec = dataclasses.replace(rec, acc_scale=1 << (layer.rec_shift - g), acc_out_scale=1 << (layer.ff_shift - g),
                                      cur_scale=1 << g)
        arrays += rec_arrays
        state += [
            StateField(f"ring{i}", "uint32_t", rec.slots * words(layer.n),
                       f"layer {i} spike ring: {rec.slots} slots of {words(layer.n)} words"),
            StateField(f"head{i}", "uint32_t", 0, f"layer {i} ring slot the next step writes, 0..{rec.slots - 1}"),
        ]
    lo, hi = int_range(layer.state_bits)
    leak_mul, leak_shift = reduced_leak(int(layer.leak_mul), int(layer.leak_shift))  # same values, smaller product
    return LayerPlan(
        index=i, n=layer.n, n_in=layer.n_in, words=words(layer.n), counts_input=i == 0,
        weight_type=weights.ctype, weight_suffix=matrix.suffix, membrane_type=vtype, membrane_suffix=vsuf,
        ff_scale=1 << layer.ff_shift, leak_mul=leak_mul, leak_shift=leak_shift,
        v_min=lo, v_max=hi, threshold=int(layer.threshold), subtract=int(layer.reset == "subtract"),
        recurrence=rec, arrays=tuple(arrays), state=tuple(state), last_word=words(layer.n) - 1,
        tail_mask=f"0x{(1 << (layer.n % 32)) - 1:08x}u" if layer.n % 32 else "",
        membrane_in_range_check=layer.state_bits not in (16, 32), matrix=matrix,
    )


def make_plan(net: IntNetwork, prefix: str = "model", max_steps: int = 1 << 20) -> Plan:
    """The complete plan for ``net``; ``ValueError`` if the prefix is unusable or a value could overflow.

    ``max_steps`` bounds the class score of one sample in the overflow check (the C score saturates, so
    longer streams stay defined, but :c:func:`classify` results are only guaranteed up to this length).
    """
    check_prefix(prefix)
    validate_network(net)
    overflow_check(net, max_steps=max_steps)
    layers = tuple(_layer_plan(layer, i) for i, layer in enumerate(net.layers))
    ro = net.readout
    k = net.n_classes
    matrix, weights = _matrix(ro.weight, ro.weight_bits, "ro_w", "readout weights", 1)
    ro_mul, ro_shift = reduced_leak(int(ro.leak_mul), int(ro.leak_shift))
    readout = ReadoutPlan(
        n=k, n_in=int(ro.weight.shape[1]), weight_type=weights.ctype, weight_suffix=matrix.suffix,
        out_scale=1 << ro.out_shift, leak_mul=ro_mul, leak_shift=ro_shift,
        arrays=(
            weights,
            ConstArray("ro_b", "int32_t", np.asarray(ro.bias), "readout bias at the readout scale"),
        ),
        state=(
            StateField("score", "int64_t", k, "class scores: running sum of u over the sample (saturating)"),
            StateField("u", "int32_t", k, "readout state (leaky integrator, saturated to int32)"),
        ),
        matrix=matrix,
    )
    bin_us = int(round_half_up(net.bin_ms * 1000))  # the project's one rounding rule, even for a macro
    frontend = None
    if net.frontend is not None:
        from .frontend_plan import frontend_plan

        frontend = frontend_plan(net.frontend)
    plan = Plan(
        prefix=prefix, macro=prefix.upper(), model_sha256=network_digest(net), n_inputs=net.n_inputs, n_classes=k,
        bin_us=bin_us, classes=tuple(net.classes), layers=layers, readout=readout,
        max_n=max([layer.n for layer in layers] + [k]), max_words=max(layer.words for layer in layers),
        meta=dict(net.meta), frontend=frontend, spec_version=int(net.spec_version),
    )
    return dataclasses.replace(plan, max_cols=max([plan.max_n] + [m.cols for m in plan.matrices]),
                               max_n_in=max(m.n_in for m in plan.matrices))
