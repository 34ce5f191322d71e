"""The frozen integer model file (``*.int.npz``): one :class:`~codegen.intmodel.IntNetwork` on disk.

Layout: a zip archive (so ``numpy.load(path, allow_pickle=False)`` opens it too) holding::

    header.json                     format, versions, n_inputs, bin_ms, classes, meta, every scalar of the
                                    graph, and for every array its dtype and shape
    layers.<i>.weight.npy           (N, N_in)   int8 if weight_bits <= 8 else int16
    layers.<i>.bias.npy             (N,)        int32
    layers.<i>.recurrence.weight.npy            int8 / int16, shape by variant (see intmodel.IntRecurrence)
    layers.<i>.recurrence.delays.npy            int32
    readout.weight.npy              (K, N_last) int8 / int16
    readout.bias.npy                (K,)        int32

The bytes are a function of the network alone: entries are sorted, stored uncompressed (deflate output
depends on the zlib build) with a fixed date and attributes, the JSON keys are sorted and every ``.npy``
has an explicit little-endian dtype and format version 1.0. So :func:`network_digest` identifies a model.

Nothing is ever unpickled: arrays are decoded from their ``.npy`` header and raw bytes only.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from pytrain.atomic import write_bytes_atomic
from pytrain.errors import UserError

from .fixedpoint import LEAK_SHIFT, MAX_SHIFT, int_range
from .intmodel import RESETS, SPEC_VERSION, VARIANTS, IntLayer, IntNetwork, IntReadout, IntRecurrence

FORMAT_NAME = "delrec-edge-int-model"
FORMAT_VERSION = 1
HEADER = "header.json"
SUFFIX = ".int.npz"

MAX_DELAY = 65534  # the largest delay whose ring buffer (max_delay + 1 slots) is indexed by a uint16
WEIGHT_BITS = (2, 16)  # weights are stored as int8 or int16
STATE_BITS = (2, 32)  # membranes live in at most a 32-bit register in the C
MAX_ENTRY_BYTES = 1 << 28  # refuse absurd entries before decompressing them

_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip can hold
_ZIP_ATTR = 0o100644 << 16  # regular file, rw-r--r--, whatever the umask of the writer
_ZIP_UNIX = 3  # "created on Unix", which zipfile otherwise sets to 0 on Windows

_DTYPES = {name: np.dtype(name).newbyteorder("<") for name in ("int8", "int16", "int32")}
BIAS_DTYPE = "int32"
DELAY_DTYPE = "int32"


# --------------------------------------------------------------------------------------------------
# validation


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _check_int(value: Any, what: str, lo: int | None = None, hi: int | None = None) -> None:
    if not _is_int(value):
        raise ValueError(f"{what} must be an integer, got {value!r}")
    if lo is not None and hi is not None and not lo <= value <= hi:
        raise ValueError(f"{what} = {value} is outside {lo}..{hi}")
    if lo is not None and value < lo:
        raise ValueError(f"{what} = {value} must be at least {lo}")


def weight_dtype(bits: int) -> str:
    """The file dtype of a weight tensor with ``bits``-bit values."""
    _check_int(bits, "weight_bits", *WEIGHT_BITS)
    return "int8" if bits <= 8 else "int16"


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
    _check_int(shift, f"{where}.leak_shift", 0, LEAK_SHIFT)
    _check_int(mul, f"{where}.leak_mul", 0, 1 << shift)


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
    _check_int(rec.weight_bits, f"{where}.weight_bits", *WEIGHT_BITS)
    _check_int(rec.frac, f"{where}.frac")
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
    _check_int(layer.weight_bits, f"{where}.weight_bits", *WEIGHT_BITS)
    _check_int(layer.state_bits, f"{where}.state_bits", *STATE_BITS)
    _check_values(layer.weight, layer.weight_bits, f"{where}.weight")
    _check_bias(layer.bias, n, where)
    _check_int(layer.weight_frac, f"{where}.weight_frac")
    _check_int(layer.v_frac, f"{where}.v_frac")
    _check_shift(layer.v_frac - layer.weight_frac, f"{where} feed-forward shift (v_frac - weight_frac)")
    # a threshold of 0 would fire on silence; above the state maximum it could never be reached
    _check_int(layer.threshold, f"{where}.threshold", 1, int_range(layer.state_bits)[1])
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
    _check_int(r.weight_bits, "readout.weight_bits", *WEIGHT_BITS)
    _check_values(r.weight, r.weight_bits, "readout.weight")
    _check_bias(r.bias, k, "readout")
    _check_int(r.weight_frac, "readout.weight_frac")
    _check_int(r.v_frac, "readout.v_frac")
    _check_shift(r.v_frac - r.weight_frac, "readout shift (v_frac - weight_frac)")
    _check_leak(r.leak_mul, r.leak_shift, "readout")


def _check_header_fields(net: IntNetwork) -> None:
    _check_int(net.spec_version, "spec_version")
    if net.spec_version != SPEC_VERSION:
        raise ValueError(f"unsupported spec_version {net.spec_version} (this version implements {SPEC_VERSION})")
    _check_int(net.n_inputs, "n_inputs", 1)
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


# --------------------------------------------------------------------------------------------------
# writing


def _layer_arrays(i: int, layer: IntLayer) -> dict[str, tuple[np.ndarray, str]]:
    arrays = {
        f"layers.{i}.weight": (layer.weight, weight_dtype(layer.weight_bits)),
        f"layers.{i}.bias": (layer.bias, BIAS_DTYPE),
    }
    rec = layer.recurrence
    if rec is not None:
        arrays[f"layers.{i}.recurrence.weight"] = (rec.weight, weight_dtype(rec.weight_bits))
        arrays[f"layers.{i}.recurrence.delays"] = (rec.delays, DELAY_DTYPE)
    return arrays


def _all_arrays(net: IntNetwork) -> dict[str, np.ndarray]:
    """Every array under its entry name, already converted to its file dtype."""
    arrays: dict[str, tuple[np.ndarray, str]] = {}
    for i, layer in enumerate(net.layers):
        arrays.update(_layer_arrays(i, layer))
    arrays["readout.weight"] = (net.readout.weight, weight_dtype(net.readout.weight_bits))
    arrays["readout.bias"] = (net.readout.bias, BIAS_DTYPE)
    # validation has checked the ranges, so these conversions never wrap
    return {name: np.ascontiguousarray(a, dtype=_DTYPES[dt]) for name, (a, dt) in arrays.items()}


def _layer_header(layer: IntLayer) -> dict:
    rec = layer.recurrence
    return {
        "weight_frac": int(layer.weight_frac),
        "v_frac": int(layer.v_frac),
        "threshold": int(layer.threshold),
        "leak_mul": int(layer.leak_mul),
        "leak_shift": int(layer.leak_shift),
        "reset": layer.reset,
        "weight_bits": int(layer.weight_bits),
        "state_bits": int(layer.state_bits),
        "recurrence": None
        if rec is None
        else {"variant": rec.variant, "frac": int(rec.frac), "weight_bits": int(rec.weight_bits)},
    }


def _header(net: IntNetwork, arrays: dict[str, np.ndarray]) -> dict:
    r = net.readout
    return {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "spec_version": int(net.spec_version),
        "n_inputs": int(net.n_inputs),
        "bin_ms": float(net.bin_ms),
        "classes": list(net.classes),
        "meta": net.meta,
        "layers": [_layer_header(layer) for layer in net.layers],
        "readout": {
            "weight_frac": int(r.weight_frac),
            "v_frac": int(r.v_frac),
            "leak_mul": int(r.leak_mul),
            "leak_shift": int(r.leak_shift),
            "weight_bits": int(r.weight_bits),
        },
        "arrays": {name: {"dtype": a.dtype.name, "shape": list(a.shape)} for name, a in arrays.items()},
    }


def _npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    # the version is pinned so a newer numpy cannot silently change the header layout
    np.lib.format.write_array(buf, a, version=(1, 0), allow_pickle=False)
    return buf.getvalue()


def _zip_bytes(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = _ZIP_ATTR
            info.create_system = _ZIP_UNIX
            archive.writestr(info, entries[name])
    return buf.getvalue()


def network_bytes(net: IntNetwork) -> bytes:
    """The complete file content for ``net`` (validated first; ``ValueError`` if invalid)."""
    validate_network(net)
    arrays = _all_arrays(net)
    header = json.dumps(_header(net, arrays), indent=2, sort_keys=True, allow_nan=False) + "\n"
    entries = {f"{name}.npy": _npy_bytes(a) for name, a in arrays.items()}
    entries[HEADER] = header.encode("utf-8")
    return _zip_bytes(entries)


def network_digest(net: IntNetwork) -> str:
    """sha256 (hex) of the file bytes: the identity of a frozen model."""
    return hashlib.sha256(network_bytes(net)).hexdigest()


def save_network(net: IntNetwork, path: Path | str) -> None:
    """Write ``net`` to ``path`` atomically (nothing is written if the network is invalid)."""
    write_bytes_atomic(Path(path), network_bytes(net))


# --------------------------------------------------------------------------------------------------
# reading


def _field(obj: dict, key: str, where: str, kind: type | tuple[type, ...] = int) -> Any:
    """``obj[key]`` of the given JSON type; ``where`` (e.g. ``layers.0``) names the object in messages."""
    name = f"{where}.{key}" if where else key
    if not isinstance(obj, dict) or key not in obj:
        raise ValueError(f"header: missing field {name}")
    value = obj[key]
    # JSON true/false would pass as int; a float field may be written as an integer
    if isinstance(value, bool) or not isinstance(value, kind):
        raise ValueError(f"header: field {name} has the wrong type ({value!r})")
    return value


def _weight_bits(h: dict, where: str) -> int:
    # checked before the dtype it selects, so a bad width is reported as such
    bits = _field(h, "weight_bits", where)
    _check_int(bits, f"{where}.weight_bits", *WEIGHT_BITS)
    return bits


class _Archive:
    """The zip entries plus the header's array table; hands out each array once, checked."""

    def __init__(self, data: bytes):
        try:
            self.zip = zipfile.ZipFile(io.BytesIO(data))
            names = self.zip.namelist()
        except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
            raise ValueError(f"not a valid zip file ({exc})") from None
        if len(set(names)) != len(names):
            raise ValueError("duplicate entries in the zip file")
        self.unread = set(names)
        self.table: dict = {}
        self.requested: set[str] = set()

    def read(self, name: str) -> bytes:
        if name not in self.unread:
            raise ValueError(f"missing entry {name}")
        info = self.zip.getinfo(name)
        if info.file_size > MAX_ENTRY_BYTES:
            raise ValueError(f"entry {name} is too large ({info.file_size} bytes)")
        try:
            data = self.zip.read(info)
        except (zipfile.BadZipFile, EOFError, OSError, zlib.error, NotImplementedError, RuntimeError) as exc:
            raise ValueError(f"corrupt entry {name} ({exc})") from None
        self.unread.discard(name)
        return data

    def array(self, name: str, dtype: str) -> np.ndarray:
        """The array ``name``, which must be declared in the header with file dtype ``dtype``."""
        self.requested.add(name)
        spec = self.table.get(name)
        if not isinstance(spec, dict):
            raise ValueError(f"header: array {name} is not declared")
        shape = _field(spec, "shape", f"arrays.{name}", list)
        if not all(_is_int(s) and s >= 0 for s in shape):
            raise ValueError(f"header: array {name} has an invalid shape {shape!r}")
        declared = _field(spec, "dtype", f"arrays.{name}", str)
        if declared != dtype:
            raise ValueError(f"array {name}: header dtype {declared} does not match its role, which needs {dtype}")
        return _decode_npy(self.read(f"{name}.npy"), name, _DTYPES[dtype], tuple(shape))

    def leftovers(self) -> list[str]:
        """Entries and declared arrays that the graph never asked for."""
        return sorted(self.unread | {f"{n}.npy" for n in set(self.table) - self.requested})


def _decode_npy(data: bytes, name: str, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    """Decode a ``.npy`` from its header and raw bytes: no pickle, no allocation before the size is known."""
    fp = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(fp)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
        if version not in read_header:
            raise ValueError(f"unsupported .npy version {version}")
        got_shape, fortran, got_dtype = read_header[version](fp)
    except ValueError as exc:
        raise ValueError(f"array {name}: not a valid .npy ({exc})") from None
    if got_dtype.hasobject:
        raise ValueError(f"array {name} holds Python objects (would need unpickling); refused")
    if got_dtype != dtype:
        raise ValueError(f"array {name}: dtype {got_dtype} does not match the header ({dtype.name})")
    if tuple(got_shape) != shape:
        raise ValueError(f"array {name}: shape {tuple(got_shape)} does not match the header {shape}")
    count = math.prod(shape)
    if len(data) - fp.tell() != count * dtype.itemsize:
        raise ValueError(f"array {name}: data size does not match its shape (truncated or padded)")
    flat = np.frombuffer(data, dtype=dtype, count=count, offset=fp.tell())
    a = flat.reshape(shape, order="F" if fortran else "C")
    return np.ascontiguousarray(a, dtype=dtype.newbyteorder("="))


def _read_header(archive: _Archive) -> dict:
    if HEADER not in archive.unread:
        raise ValueError(f"missing {HEADER}")
    try:
        header = json.loads(archive.read(HEADER).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{HEADER} is not valid JSON ({exc})") from None
    if not isinstance(header, dict):
        raise ValueError(f"{HEADER} is not a JSON object")
    if header.get("format") != FORMAT_NAME:
        raise ValueError(f"not a delrec-edge integer model (format {header.get('format')!r}, expected {FORMAT_NAME!r})")
    version = header.get("version")
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise ValueError(f"unsupported file format version {version!r} (this version reads {FORMAT_VERSION})")
    spec = header.get("spec_version")
    if spec != SPEC_VERSION or isinstance(spec, bool):
        raise ValueError(f"unsupported spec_version {spec!r} (this version implements {SPEC_VERSION})")
    archive.table = _field(header, "arrays", "", dict)
    return header


def _read_recurrence(h: dict | None, archive: _Archive, prefix: str) -> IntRecurrence | None:
    if h is None:
        return None
    bits = _weight_bits(h, prefix)
    return IntRecurrence(
        variant=_field(h, "variant", prefix, str),
        weight=archive.array(f"{prefix}.weight", weight_dtype(bits)),
        frac=_field(h, "frac", prefix),
        delays=archive.array(f"{prefix}.delays", DELAY_DTYPE),
        weight_bits=bits,
    )


def _read_layer(h: dict, archive: _Archive, prefix: str) -> IntLayer:
    bits = _weight_bits(h, prefix)
    if "recurrence" not in h or not isinstance(h["recurrence"], (dict, type(None))):
        raise ValueError(f"header: field {prefix}.recurrence is missing or not an object")
    return IntLayer(
        weight=archive.array(f"{prefix}.weight", weight_dtype(bits)),
        weight_frac=_field(h, "weight_frac", prefix),
        bias=archive.array(f"{prefix}.bias", BIAS_DTYPE),
        v_frac=_field(h, "v_frac", prefix),
        threshold=_field(h, "threshold", prefix),
        leak_mul=_field(h, "leak_mul", prefix),
        leak_shift=_field(h, "leak_shift", prefix),
        reset=_field(h, "reset", prefix, str),
        recurrence=_read_recurrence(h["recurrence"], archive, f"{prefix}.recurrence"),
        weight_bits=bits,
        state_bits=_field(h, "state_bits", prefix),
    )


def _read_readout(h: dict, archive: _Archive) -> IntReadout:
    bits = _weight_bits(h, "readout")
    return IntReadout(
        weight=archive.array("readout.weight", weight_dtype(bits)),
        weight_frac=_field(h, "weight_frac", "readout"),
        bias=archive.array("readout.bias", BIAS_DTYPE),
        v_frac=_field(h, "v_frac", "readout"),
        leak_mul=_field(h, "leak_mul", "readout"),
        leak_shift=_field(h, "leak_shift", "readout"),
        weight_bits=bits,
    )


def _parse(data: bytes) -> IntNetwork:
    archive = _Archive(data)
    header = _read_header(archive)
    layers = _field(header, "layers", "", list)
    classes = _field(header, "classes", "", list)
    if not all(isinstance(c, str) for c in classes):
        raise ValueError("header: classes must be strings")
    net = IntNetwork(
        n_inputs=_field(header, "n_inputs", ""),
        layers=tuple(_read_layer(h, archive, f"layers.{i}") for i, h in enumerate(layers)),
        readout=_read_readout(_field(header, "readout", "", dict), archive),
        bin_ms=float(_field(header, "bin_ms", "", (int, float))),
        classes=tuple(classes),
        meta=_field(header, "meta", "", dict),
        spec_version=header["spec_version"],
    )
    # a stray entry means the header and the content disagree about what the model is
    if archive.leftovers():
        raise ValueError(f"entries not described by the graph: {', '.join(archive.leftovers())}")
    return net


def load_network(path: Path | str) -> IntNetwork:
    """Read and fully validate a model file; any problem is a one-line :class:`UserError` naming ``path``."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory, not a model file") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        net = _parse(data)
        validate_network(net)
    except ValueError as exc:
        raise UserError(f"{path}: " + " ".join(str(exc).split())) from None
    return net
