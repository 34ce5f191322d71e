"""The frozen integer model file (``*.int.npz``): one :class:`~codegen.integer.network.IntNetwork` on disk.

Layout: a zip archive (so ``numpy.load(path, allow_pickle=False)`` opens it too) holding::

    header.json                     format, versions, n_inputs, bin_ms, classes, meta, every scalar of the
                                    graph, and for every array its dtype and shape
    layers.<i>.weight.npy           (N, N_in)   int8 if weight_bits <= 8 else int16
    layers.<i>.bias.npy             (N,)        int32
    layers.<i>.recurrence.weight.npy            int8 / int16, shape by variant (see network.IntRecurrence)
    layers.<i>.recurrence.delays.npy            int32
    readout.weight.npy              (K, N_last) int8 / int16
    readout.bias.npy                (K,)        int32
    frontend.<name>.npy             int16 arrays of the audio front end (window, cos, sin, chan, weight,
                                    log_table), when the network has one; its scalars are in the header

The front end alone is written the same way (:func:`frontend_bytes`, format ``delrec-edge-int-frontend``):
datasets built from audio keep theirs in ``frontend.int.npz``, and :func:`frontend_digest` (the sha256 of
those bytes) identifies it in ``dataset.json``, in checkpoints and in runs.

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

from ..common.atomic import write_bytes_atomic
from ..common.errors import UserError
from .frontend import ARRAYS as FRONTEND_ARRAYS
from .frontend import SCALARS as FRONTEND_SCALARS
from .frontend import IntFrontEnd, validate_frontend
from .network import SPEC_VERSION, SUPPORTED_SPECS, IntLayer, IntNetwork, IntReadout, IntRecurrence
from .validate import WEIGHT_BITS, check_int, is_int, validate_network

FORMAT_NAME = "delrec-edge-int-model"
FRONTEND_FORMAT_NAME = "delrec-edge-int-frontend"
FORMAT_VERSION = 1
FRONTEND_DTYPE = "int16"
HEADER = "header.json"
SUFFIX = ".int.npz"

MAX_ENTRY_BYTES = 1 << 28  # refuse absurd entries before decompressing them

_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip can hold
_ZIP_ATTR = 0o100644 << 16  # regular file, rw-r--r--, whatever the umask of the writer
_ZIP_UNIX = 3  # "created on Unix", which zipfile otherwise sets to 0 on Windows

_DTYPES = {name: np.dtype(name).newbyteorder("<") for name in ("int8", "int16", "int32")}
BIAS_DTYPE = "int32"
DELAY_DTYPE = "int32"


def weight_dtype(bits: int) -> str:
    """The file dtype of a weight tensor with ``bits``-bit values."""
    check_int(bits, "weight_bits", *WEIGHT_BITS)
    return "int8" if bits <= 8 else "int16"


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
    if net.frontend is not None:
        arrays.update(_frontend_arrays(net.frontend))
    # validation has checked the ranges, so these conversions never wrap
    return {name: np.ascontiguousarray(a, dtype=_DTYPES[dt]) for name, (a, dt) in arrays.items()}


def _frontend_arrays(fe: IntFrontEnd) -> dict[str, tuple[np.ndarray, str]]:
    return {f"frontend.{name}": (getattr(fe, name), FRONTEND_DTYPE) for name in FRONTEND_ARRAYS}


def _frontend_header(fe: IntFrontEnd) -> dict:
    h = {name: int(getattr(fe, name)) for name in FRONTEND_SCALARS}
    h["fft_shifts"] = [int(v) for v in fe.fft_shifts]
    h["config"] = fe.config
    return h


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
    header = {
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
        "frontend": None if net.frontend is None else _frontend_header(net.frontend),
        "arrays": {name: {"dtype": a.dtype.name, "shape": list(a.shape)} for name, a in arrays.items()},
    }
    if net.spec_version == 1:
        del header["frontend"]  # spec 1 had no such entry: its files stay byte-identical
    return header


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


def frontend_bytes(fe: IntFrontEnd) -> bytes:
    """The standalone front-end file (validated first; ``ValueError`` if invalid): same layout as a model file."""
    validate_frontend(fe)
    arrays = {name: np.ascontiguousarray(a, dtype=_DTYPES[dt]) for name, (a, dt) in _frontend_arrays(fe).items()}
    header = {
        "format": FRONTEND_FORMAT_NAME,
        "version": FORMAT_VERSION,
        "spec_version": SPEC_VERSION,
        "frontend": _frontend_header(fe),
        "arrays": {name: {"dtype": a.dtype.name, "shape": list(a.shape)} for name, a in arrays.items()},
    }
    text = json.dumps(header, indent=2, sort_keys=True, allow_nan=False) + "\n"
    entries = {f"{name}.npy": _npy_bytes(a) for name, a in arrays.items()}
    entries[HEADER] = text.encode("utf-8")
    return _zip_bytes(entries)


def frontend_digest(fe: IntFrontEnd) -> str:
    """sha256 (hex) of :func:`frontend_bytes`: the identity of a front end, wherever it is recorded."""
    return hashlib.sha256(frontend_bytes(fe)).hexdigest()


def save_frontend(fe: IntFrontEnd, path: Path | str) -> None:
    """Write the standalone front-end file atomically."""
    write_bytes_atomic(Path(path), frontend_bytes(fe))


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
    check_int(bits, f"{where}.weight_bits", *WEIGHT_BITS)
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
        if not all(is_int(s) and s >= 0 for s in shape):
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


def _read_header(archive: _Archive, format_name: str = FORMAT_NAME) -> dict:
    if HEADER not in archive.unread:
        raise ValueError(f"missing {HEADER}")
    try:
        header = json.loads(archive.read(HEADER).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{HEADER} is not valid JSON ({exc})") from None
    if not isinstance(header, dict):
        raise ValueError(f"{HEADER} is not a JSON object")
    if header.get("format") != format_name:
        what = "integer model" if format_name == FORMAT_NAME else "integer front end"
        raise ValueError(f"not a delrec-edge {what} (format {header.get('format')!r}, expected {format_name!r})")
    version = header.get("version")
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise ValueError(f"unsupported file format version {version!r} (this version reads {FORMAT_VERSION})")
    spec = header.get("spec_version")
    supported = SUPPORTED_SPECS if format_name == FORMAT_NAME else (SPEC_VERSION,)
    if spec not in supported or isinstance(spec, bool):
        raise ValueError(f"unsupported spec_version {spec!r} (this version reads {', '.join(map(str, supported))})")
    if spec == 1 and "frontend" in header:
        raise ValueError("spec_version 1 has no audio front end (the front end is spec 2)")
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


def _read_frontend(h, archive: _Archive) -> IntFrontEnd | None:
    if h is None:
        return None
    if not isinstance(h, dict):
        raise ValueError("header: field frontend must be an object or null")
    shifts = _field(h, "fft_shifts", "frontend", list)
    if not all(is_int(v) for v in shifts):
        raise ValueError("header: frontend.fft_shifts must be integers")
    return IntFrontEnd(
        **{name: _field(h, name, "frontend") for name in FRONTEND_SCALARS},
        **{name: archive.array(f"frontend.{name}", FRONTEND_DTYPE) for name in FRONTEND_ARRAYS},
        fft_shifts=tuple(shifts),
        config=_field(h, "config", "frontend", dict),
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
        frontend=_read_frontend(header.get("frontend"), archive),
    )
    # a stray entry means the header and the content disagree about what the model is
    if archive.leftovers():
        raise ValueError(f"entries not described by the graph: {', '.join(archive.leftovers())}")
    return net


def _parse_frontend(data: bytes) -> IntFrontEnd:
    archive = _Archive(data)
    header = _read_header(archive, FRONTEND_FORMAT_NAME)
    fe = _read_frontend(_field(header, "frontend", "", dict), archive)
    if archive.leftovers():
        raise ValueError(f"entries not described by the header: {', '.join(archive.leftovers())}")
    return fe


def _read_bytes(path: Path | str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory, not {what}") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror})") from None


def _load(path: Path | str, what: str, parse, validate):
    data = _read_bytes(path, what)
    try:
        obj = parse(data)
        validate(obj)
    except ValueError as exc:
        raise UserError(f"{path}: " + " ".join(str(exc).split())) from None
    return obj


def load_frontend(path: Path | str) -> IntFrontEnd:
    """Read and validate a standalone front-end file; any problem is a one-line :class:`UserError`."""
    return _load(path, "a front-end file", _parse_frontend, validate_frontend)


def load_network(path: Path | str) -> IntNetwork:
    """Read and fully validate a model file; any problem is a one-line :class:`UserError` naming ``path``."""
    return _load(path, "a model file", _parse, validate_network)
