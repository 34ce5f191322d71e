"""The frozen integer model file: exact round trips, deterministic bytes, and a one-line refusal of every bad file."""

from __future__ import annotations

import dataclasses
import io
import json
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from codegen.integer.network import VARIANTS
from codegen.integer.modelfile import load_network, network_bytes, network_digest, save_network, validate_network
from codegen.common.errors import UserError
from intnet_builders import tiny_network

ALL_VARIANTS = (*VARIANTS, None)  # None: a feed-forward layer without recurrence


def assert_same_network(a, b) -> None:
    """Every scalar equal and every array equal in shape, dtype and value."""

    def same(x, y, where):
        if isinstance(x, np.ndarray):
            assert isinstance(y, np.ndarray) and x.dtype == y.dtype and x.shape == y.shape, where
            np.testing.assert_array_equal(x, y, err_msg=where)
        elif dataclasses.is_dataclass(x):
            assert type(x) is type(y), where
            for f in dataclasses.fields(x):
                same(getattr(x, f.name), getattr(y, f.name), f"{where}.{f.name}")
        elif isinstance(x, tuple):
            assert isinstance(y, tuple) and len(x) == len(y), where
            for i, (xi, yi) in enumerate(zip(x, y)):
                same(xi, yi, f"{where}[{i}]")
        else:
            assert type(x) is type(y) and x == y, where

    same(a, b, "net")


def saved(tmp_path: Path, net=None, name: str = "model.int.npz") -> Path:
    path = tmp_path / name
    save_network(net if net is not None else tiny_network("conv", n_layers=2), path)
    return path


def npy(a: np.ndarray, allow_pickle: bool = False) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, a, allow_pickle=allow_pickle)
    return buf.getvalue()


class Contents:
    """A model file taken apart for tampering: the header dict, the arrays, and raw entries written verbatim."""

    def __init__(self, path: Path):
        with zipfile.ZipFile(path) as z:
            entries = {n: z.read(n) for n in z.namelist()}
        self.header = json.loads(entries.pop("header.json"))
        self.arrays = {n[:-4]: np.lib.format.read_array(io.BytesIO(d), allow_pickle=False) for n, d in entries.items()}
        self.raw: dict[str, bytes | None] = {}  # None drops the entry

    def set_array(self, name: str, a: np.ndarray) -> None:
        """Replace an array and keep the header's table in step, so only the graph checks can object."""
        self.arrays[name] = a
        self.header["arrays"][name] = {"dtype": a.dtype.name, "shape": list(a.shape)}

    def edit(self, name: str, fn: Callable[[np.ndarray], None]) -> None:
        a = self.arrays[name].copy()
        fn(a)
        self.set_array(name, a)

    def write(self, path: Path) -> None:
        entries = {"header.json": json.dumps(self.header).encode()}
        entries.update({f"{n}.npy": npy(a) for n, a in self.arrays.items()})
        entries.update(self.raw)
        with zipfile.ZipFile(path, "w") as z:
            for n, d in entries.items():
                if d is not None:
                    z.writestr(n, d)


def layer(c: Contents, i: int = 0) -> dict:
    return c.header["layers"][i]


def rec(c: Contents, i: int = 0) -> dict:
    return c.header["layers"][i]["recurrence"]


def assert_refused(path: Path, match: str) -> None:
    with pytest.raises(UserError, match=match) as info:
        load_network(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message


# ------------------------------------------------------------------------------------------------
# round trips and determinism


@pytest.mark.parametrize("variant", ALL_VARIANTS)
def test_round_trip_is_exact_for_every_variant(tmp_path, variant):
    net = tiny_network(variant, n_layers=2, seed=3)
    assert_same_network(load_network(saved(tmp_path, net)), net)


@pytest.mark.parametrize("variant", ["conv", "dense", "taps"])
def test_round_trip_of_16_bit_weights(tmp_path, variant):
    net = tiny_network(variant, n=4, weight_bits=12, rec_weight_bits=16)
    back = load_network(saved(tmp_path, net))
    assert back.layers[0].weight.dtype == np.int16 and back.layers[0].recurrence.weight.dtype == np.int16
    assert_same_network(back, net)


@given(
    variant=st.sampled_from(ALL_VARIANTS),
    n_in=st.integers(1, 9),
    n=st.integers(1, 9),
    n_layers=st.integers(1, 3),
    weight_bits=st.integers(2, 16),
    seed=st.integers(0, 2**32 - 1),
)
def test_round_trip_of_random_networks(variant, n_in, n, n_layers, weight_bits, seed):
    net = tiny_network(variant, n_in, n, n_layers=n_layers, weight_bits=weight_bits, seed=seed)
    with tempfile.TemporaryDirectory() as tmp:
        back = load_network(saved(Path(tmp), net))
    assert_same_network(back, net)
    assert network_bytes(back) == network_bytes(net)


def test_same_network_gives_identical_bytes(tmp_path):
    net = tiny_network("taps", n_layers=2, seed=5)
    first, second = saved(tmp_path, net, "a.int.npz"), saved(tmp_path, net, "b.int.npz")
    assert first.read_bytes() == second.read_bytes() == network_bytes(net)
    # an equal network built separately gives the same bytes, and so does a load/save round trip
    assert network_bytes(tiny_network("taps", n_layers=2, seed=5)) == network_bytes(net)
    again = saved(tmp_path, load_network(first), "c.int.npz")
    assert again.read_bytes() == first.read_bytes()
    assert network_digest(load_network(again)) == network_digest(net)


def test_digest_is_pinned():
    # Any change to the bytes (header layout, zip settings, .npy writer) must be deliberate: it changes every
    # model's identity, so bump FORMAT_VERSION (or, for the content, SPEC_VERSION) and update this value together.
    # Updated for integer spec 2: the header's spec_version and its "frontend" entry (null here).
    net = tiny_network("conv", n_layers=2, seed=0)
    assert network_digest(net) == "c8dbf2cd43fc841f29309d5215a784dc867f7df319a815e941fd6acbaf978b4c"


def test_zip_entries_are_sorted_and_dated_1980(tmp_path):
    with zipfile.ZipFile(saved(tmp_path)) as z:
        infos = z.infolist()
    names = [i.filename for i in infos]
    assert names == sorted(names) and "header.json" in names
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {i.compress_type for i in infos} == {zipfile.ZIP_STORED}


def test_changed_weight_changes_digest():
    net = tiny_network("conv", seed=1)
    weight = net.layers[0].weight.copy()
    weight[0, 0] = 1 if weight[0, 0] != 1 else 2
    changed = dataclasses.replace(net, layers=(dataclasses.replace(net.layers[0], weight=weight),))
    assert network_digest(changed) != network_digest(net)
    assert len(network_digest(net)) == 64


def test_numpy_can_open_the_file_without_pickle(tmp_path):
    net = tiny_network("dense", n_layers=2)
    with np.load(saved(tmp_path, net), allow_pickle=False) as z:
        np.testing.assert_array_equal(z["layers.1.recurrence.weight"], net.layers[1].recurrence.weight)
        np.testing.assert_array_equal(z["readout.bias"], net.readout.bias)
        header = json.loads(z["header.json"])
    assert header["format"] == "delrec-edge-int-model" and header["version"] == 1
    assert header["meta"]["preset"] == "tiny"
    assert header["arrays"]["layers.0.weight"] == {"dtype": "int8", "shape": [6, 4]}


def test_fortran_ordered_array_loads_equal(tmp_path):
    net = tiny_network("dense")
    path = saved(tmp_path, net)
    c = Contents(path)
    c.raw["layers.0.weight.npy"] = npy(np.asfortranarray(net.layers[0].weight))
    c.write(path)
    assert_same_network(load_network(path), net)


# ------------------------------------------------------------------------------------------------
# invalid networks are refused before anything is written


def test_save_refuses_an_invalid_network(tmp_path):
    net = tiny_network("conv")
    bad = dataclasses.replace(net, layers=(dataclasses.replace(net.layers[0], threshold=0),))
    with pytest.raises(ValueError, match="threshold"):
        save_network(bad, tmp_path / "bad.int.npz")
    assert list(tmp_path.iterdir()) == []


def test_validate_refuses_bias_outside_int32():
    net = tiny_network("conv")
    bias = net.layers[0].bias.astype(np.int64)
    bias[0] = 2**31
    with pytest.raises(ValueError, match="bias"):
        validate_network(dataclasses.replace(net, layers=(dataclasses.replace(net.layers[0], bias=bias),)))


def test_validate_refuses_float_weights():
    net = tiny_network("dense")
    readout = dataclasses.replace(net.readout, weight=net.readout.weight.astype(np.float32))
    with pytest.raises(ValueError, match="integer numpy array"):
        validate_network(dataclasses.replace(net, readout=readout))


def test_validate_accepts_wide_in_memory_arrays():
    # the exporter may hand over int64 arrays; only the values have to fit
    net = tiny_network("conv")
    wide = dataclasses.replace(net.layers[0], weight=net.layers[0].weight.astype(np.int64))
    validate_network(dataclasses.replace(net, layers=(wide,)))
    assert network_bytes(dataclasses.replace(net, layers=(wide,))) == network_bytes(net)


# ------------------------------------------------------------------------------------------------
# bad files: each tamper starts from a valid two-layer network of the given variant


def _set(d_of: Callable[[Contents], dict], key: str, value) -> Callable[[Contents], None]:
    return lambda c: d_of(c).__setitem__(key, value)


def _top(c: Contents) -> dict:
    return c.header


def _readout(c: Contents) -> dict:
    return c.header["readout"]


def _drop_layers(c: Contents) -> None:
    c.header["layers"] = []
    for name in [n for n in c.arrays if n.startswith("layers.")]:
        del c.arrays[name]
        del c.header["arrays"][name]


def _put(a: np.ndarray, index: tuple, value: int) -> None:
    a[index] = value


def _weight_out_of_bits(c: Contents) -> None:
    c.edit("layers.0.weight", lambda a: _put(a, (0, 0), 100))
    layer(c)["weight_bits"] = 4


def _rec_weight_out_of_bits(c: Contents) -> None:
    c.edit("layers.1.recurrence.weight", lambda a: _put(a, (0, 0, 0), -9))
    rec(c, 1)["weight_bits"] = 4


def _readout_weight_out_of_bits(c: Contents) -> None:
    c.edit("readout.weight", lambda a: _put(a, (0, 0), 2))
    _readout(c)["weight_bits"] = 2


class Boom:
    """Unpickling this records the fact: the loader must never get that far."""

    def __reduce__(self):
        return (_unpickled.append, (True,))


_unpickled: list = []

Z32 = np.int32
TAMPERS: dict[str, tuple[str | None, Callable[[Contents], None], str]] = {
    # header identity
    "format": ("conv", _set(_top, "format", "some-other-model"), "not a delrec-edge integer model"),
    "file version": ("conv", _set(_top, "version", 2), "unsupported file format version 2"),
    "spec version": ("conv", _set(_top, "spec_version", 99), "unsupported spec_version 99"),
    "spec 0": ("conv", _set(_top, "spec_version", 0), "unsupported spec_version 0"),
    "spec 1 with a front-end entry": ("conv", _set(_top, "spec_version", 1), "spec_version 1 has no audio front end"),
    "header not json": ("conv", lambda c: c.raw.__setitem__("header.json", b"{not json"), "not valid JSON"),
    "header not object": ("conv", lambda c: c.raw.__setitem__("header.json", b"[1, 2]"), "not a JSON object"),
    "missing header": ("conv", lambda c: c.raw.__setitem__("header.json", None), "missing header.json"),
    "missing field": ("conv", lambda c: layer(c).pop("reset"), "missing field layers.0.reset"),
    "missing arrays table": ("conv", lambda c: c.header.pop("arrays"), "missing field arrays"),
    "string where int": ("conv", _set(layer, "threshold", "3"), "layers.0.threshold has the wrong type"),
    "bool where int": ("conv", _set(layer, "v_frac", True), "layers.0.v_frac has the wrong type"),
    "recurrence not object": ("conv", _set(layer, "recurrence", "conv"), "recurrence is missing or not an object"),
    # arrays against the header
    "missing array": ("conv", lambda c: c.raw.__setitem__("layers.0.bias.npy", None), "missing entry layers.0.bias.npy"),
    "undeclared array": ("conv", lambda c: c.header["arrays"].pop("readout.bias"), "readout.bias is not declared"),
    "extra entry": ("conv", lambda c: c.set_array("extra", np.zeros(3, Z32)), "not described by the graph: extra.npy"),
    "dtype vs header": (
        "conv",
        lambda c: c.raw.__setitem__("layers.0.weight.npy", npy(c.arrays["layers.0.weight"].astype(np.int16))),
        "dtype int16 does not match the header",
    ),
    "dtype vs role": (
        "conv",
        lambda c: c.set_array("layers.0.weight", c.arrays["layers.0.weight"].astype(np.int16)),
        "needs int8",
    ),
    "bias int64": ("conv", lambda c: c.set_array("layers.0.bias", np.full(6, 2**40, np.int64)), "needs int32"),
    "shape vs header": (
        "conv",
        lambda c: c.raw.__setitem__("readout.bias.npy", npy(np.zeros(4, Z32))),
        r"shape \(4,\) does not match the header \(3,\)",
    ),
    "bad shape in header": ("conv", lambda c: c.header["arrays"]["readout.bias"].update(shape=[-3]), "invalid shape"),
    "npy data truncated": (
        "conv",
        lambda c: c.raw.__setitem__("layers.0.bias.npy", npy(c.arrays["layers.0.bias"])[:-2]),
        "truncated or padded",
    ),
    "npy not npy": ("conv", lambda c: c.raw.__setitem__("layers.0.bias.npy", b"hello"), "not a valid .npy"),
    # shapes that do not chain
    "first n_in": ("conv", _set(_top, "n_inputs", 5), r"layers.0.weight takes 4 inputs but receives 5"),
    "layer chain": ("conv", lambda c: c.set_array("layers.1.weight", np.zeros((6, 5), np.int8)), "takes 5 inputs"),
    "readout input": ("conv", lambda c: c.set_array("readout.weight", np.zeros((3, 7), np.int8)), "readout.weight takes 7"),
    "class count": ("conv", _set(_top, "classes", ["yes", "no"]), "2 class names for 3 readout rows"),
    "classes not strings": ("conv", _set(_top, "classes", [1, 2, 3]), "classes must be strings"),
    "bias length": ("conv", lambda c: c.set_array("layers.0.bias", np.zeros(5, Z32)), "bias has shape"),
    "no layers": ("conv", _drop_layers, "non-empty"),
    "n_inputs zero": ("conv", _set(_top, "n_inputs", 0), "n_inputs = 0 must be at least 1"),
    "bin_ms zero": ("conv", _set(_top, "bin_ms", 0), "bin_ms"),
    # value ranges
    "weight bits": ("conv", _weight_out_of_bits, r"layers.0.weight has values .* outside the 4-bit range"),
    "rec weight bits": ("conv", _rec_weight_out_of_bits, r"recurrence.weight has values .* 4-bit"),
    "readout weight bits": ("conv", _readout_weight_out_of_bits, r"readout.weight has values .* 2-bit"),
    "weight_bits too wide": ("conv", _set(layer, "weight_bits", 20), "weight_bits = 20"),
    "rec weight_bits too wide": ("taps", lambda c: rec(c, 1).update(weight_bits=17), "layers.1.recurrence.weight_bits = 17"),
    "readout weight_bits too narrow": ("conv", _set(_readout, "weight_bits", 1), "readout.weight_bits = 1"),
    "state_bits too wide": ("conv", _set(layer, "state_bits", 40), "state_bits = 40"),
    "threshold zero": ("conv", _set(layer, "threshold", 0), "threshold = 0"),
    "threshold above state": ("conv", _set(layer, "threshold", 2**15), "threshold = 32768 is outside 1..32767"),
    "threshold above 8-bit state": ("conv", lambda c: layer(c).update(state_bits=8, threshold=128), "outside 1..127"),
    "leak_mul negative": ("conv", _set(layer, "leak_mul", -1), "leak_mul = -1"),
    "leak_mul above one": ("conv", lambda c: layer(c).update(leak_shift=3, leak_mul=9), r"leak_mul = 9 is outside 0..8"),
    "leak_shift 16": ("conv", _set(layer, "leak_shift", 16), "leak_shift = 16"),
    "leak_shift negative": ("conv", _set(layer, "leak_shift", -1), "leak_shift = -1"),
    "readout leak_shift": ("conv", _set(_readout, "leak_shift", 16), "readout.leak_shift = 16"),
    "readout leak_mul": ("conv", lambda c: _readout(c).update(leak_shift=0, leak_mul=2), "readout.leak_mul = 2"),
    "ff shift negative": ("conv", lambda c: layer(c).update(weight_frac=9, v_frac=8), "feed-forward shift .* = -1"),
    "rec shift negative": ("conv", lambda c: rec(c).update(frac=layer(c)["v_frac"] + 1), "recurrence shift .* = -1"),
    "readout shift negative": ("conv", lambda c: _readout(c).update(weight_frac=5, v_frac=3), "readout shift .* = -2"),
    "shift too large": ("conv", lambda c: layer(c).update(weight_frac=-40, v_frac=0), "shift .* = 40"),
    "reset": ("conv", _set(layer, "reset", "hard"), "reset 'hard' is not one of"),
    "variant": ("conv", lambda c: rec(c).update(variant="lstm"), "variant 'lstm' is not one of"),
    # recurrent weight shapes
    "conv even K": ("conv", lambda c: c.set_array("layers.0.recurrence.weight", np.zeros((2, 2, 2), np.int8)), "odd K"),
    "conv C not dividing N": (
        "conv",
        lambda c: c.set_array("layers.0.recurrence.weight", np.zeros((4, 4, 3), np.int8)),
        "C dividing N=6",
    ),
    "conv channels differ": (
        "conv",
        lambda c: c.set_array("layers.0.recurrence.weight", np.zeros((2, 1, 3), np.int8)),
        r"\(C, C, K\)",
    ),
    "conv as matrix": ("conv", lambda c: c.set_array("layers.0.recurrence.weight", np.zeros((6, 6), np.int8)), "3 dimensions"),
    "nodelay even K": (
        "conv-nodelay",
        lambda c: c.set_array("layers.0.recurrence.weight", np.zeros((1, 1, 4), np.int8)),
        "odd K",
    ),
    "dense not square": ("dense", lambda c: c.set_array("layers.0.recurrence.weight", np.zeros((6, 7), np.int8)), r"\(6, 6\)"),
    "taps no lags": ("taps", lambda c: c.set_array("layers.0.recurrence.weight", np.zeros((0, 2, 2, 3), np.int8)), "D >= 1"),
    "taps even K": ("taps", lambda c: c.set_array("layers.0.recurrence.weight", np.zeros((2, 2, 2, 2), np.int8)), "odd K"),
    "taps without D": ("taps", lambda c: c.set_array("layers.0.recurrence.weight", np.zeros((2, 2, 3), np.int8)), "4 dimensions"),
    # delays
    "delay negative": ("conv", lambda c: c.edit("layers.0.recurrence.delays", lambda a: _put(a, (2,), -1)), "delays must be in"),
    "delay too large": ("dense", lambda c: c.edit("layers.1.recurrence.delays", lambda a: _put(a, (0,), 65535)), "0..65534"),
    "delays short": ("conv", lambda c: c.set_array("layers.0.recurrence.delays", np.zeros(5, Z32)), r"conv needs \(6,\)"),
    "delays long": ("dense", lambda c: c.set_array("layers.0.recurrence.delays", np.zeros(7, Z32)), r"dense needs \(6,\)"),
    "nodelay with delays": (
        "conv-nodelay",
        lambda c: c.edit("layers.0.recurrence.delays", lambda a: _put(a, (1,), 1)),
        "must all be zero",
    ),
    "taps with delays": ("taps", lambda c: c.set_array("layers.0.recurrence.delays", np.zeros(6, Z32)), r"taps needs \(0,\)"),
    "delays 2-d": ("conv", lambda c: c.set_array("layers.0.recurrence.delays", np.zeros((6, 1), Z32)), "1 dimensions"),
}


@pytest.mark.parametrize("case", list(TAMPERS))
def test_tampered_file_is_refused(tmp_path, case):
    variant, tamper, match = TAMPERS[case]
    path = saved(tmp_path, tiny_network(variant, n_layers=2, seed=7))
    contents = Contents(path)
    tamper(contents)
    contents.write(path)
    assert_refused(path, match)


def test_array_that_needs_pickle_is_refused_without_unpickling(tmp_path):
    path = saved(tmp_path)
    contents = Contents(path)
    contents.raw["layers.0.bias.npy"] = npy(np.array([Boom()] * 6, dtype=object), allow_pickle=True)
    contents.write(path)
    assert_refused(path, "would need unpickling")
    assert _unpickled == []


# ------------------------------------------------------------------------------------------------
# files that are not model files at all


def test_text_file_is_refused(tmp_path):
    path = tmp_path / "notes.int.npz"
    path.write_text("not a zip\n")
    assert_refused(path, "not a valid zip file")


def test_empty_file_is_refused(tmp_path):
    path = tmp_path / "empty.int.npz"
    path.write_bytes(b"")
    assert_refused(path, "not a valid zip file")


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.99])
def test_truncated_file_is_refused(tmp_path, keep):
    path = saved(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    assert_refused(path, "not a valid zip file")


def test_corrupted_array_bytes_are_refused(tmp_path):
    path = saved(tmp_path)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("readout.weight.npy")
    # the local header is 30 bytes plus the name; the last data byte is a weight, covered by the CRC
    last = info.header_offset + 30 + len(info.filename) + info.compress_size - 1
    data[last] ^= 0x01
    path.write_bytes(bytes(data))
    assert_refused(path, "corrupt entry readout.weight.npy")


def test_missing_file_and_directory_are_refused(tmp_path):
    assert_refused(tmp_path / "absent.int.npz", "no such file")
    assert_refused(tmp_path, "is a directory")


def test_plain_npz_without_header_is_refused(tmp_path):
    path = tmp_path / "weights.npz"
    np.savez(path, w=np.zeros(3))
    assert_refused(path, "missing header.json")


def test_spec_1_is_read_without_a_front_end_only():
    import dataclasses

    from codegen.integer.frontend import FrontEndConfig, design
    from codegen.integer.validate import validate_network

    net = dataclasses.replace(tiny_network("conv", n_in=32, n=8, n_layers=2, seed=7), bin_ms=10.0, spec_version=1)
    validate_network(net)
    with pytest.raises(ValueError, match="spec_version 1 has no audio front end"):
        validate_network(dataclasses.replace(net, frontend=design(FrontEndConfig())))
    with pytest.raises(ValueError, match="unsupported spec_version 3"):
        validate_network(dataclasses.replace(net, spec_version=3))
