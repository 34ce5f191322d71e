"""pytrain.data: SHD/SSC and dataset folders through tonic, binning, caching, errors. All offline."""

from __future__ import annotations

import os
import socket
import urllib.request

import h5py
import numpy as np
import pytest
import tonic
import torch
from hypothesis import given
from hypothesis import strategies as st

from pytrain.data import framecache
from pytrain.data import loader as D
from pytrain.data import spikefile
from codegen.common.errors import UserError
from tonic_fixture import SHD_CLASSES, make_shd_root, make_ssc_root, touch_marker, write_hsd_h5


def _no_network(*args, **kwargs):
    raise AssertionError("the loader tried to reach the network")


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """Every test: a private frame cache, no default data root, and any download attempt fails loudly."""
    monkeypatch.setenv("DELREC_EDGE_CACHE", str(tmp_path / "frame-cache"))
    monkeypatch.delenv("DELREC_EDGE_DATA", raising=False)
    monkeypatch.setattr(tonic.dataset.Dataset, "download", _no_network)
    monkeypatch.setattr(tonic.download_utils, "download_url", _no_network)
    monkeypatch.setattr(urllib.request, "urlopen", _no_network)
    monkeypatch.setattr(socket.socket, "connect", _no_network)


@pytest.fixture(scope="module")
def shd_root(tmp_path_factory):
    return make_shd_root(tmp_path_factory.mktemp("shd"), n=6)


@pytest.fixture(scope="module")
def ssc_root(tmp_path_factory):
    return make_ssc_root(tmp_path_factory.mktemp("ssc"), n=5)


def raw(h5):
    """The stored rows, read without tonic."""
    with h5py.File(h5, "r") as f:
        return list(f["spikes/times"][:]), list(f["spikes/units"][:]), f["labels"][:].astype(np.int64)


def load(spec, **kw):
    kw.setdefault("progress", False)
    return D.load_data(str(spec), **kw)


def assert_matches_reference(tensors, h5, n_channels, bin_ms, n_steps, group):
    """Each sample equals frames_from_events on the raw row; fixture speakers are the row numbers."""
    times, units, labels = raw(h5)
    for x, y, row in zip(tensors.x, tensors.y, tensors.speakers):
        ref = D.frames_from_events(times[row], units[row], n_channels, bin_ms, n_steps, group)
        assert np.array_equal(x.numpy(), ref), f"{h5.name} row {row}"
        assert int(y) == labels[row]


# ----------------------------------------------------------------------------- shapes and splits


def test_shd_fixture_loads_every_split(shd_root):
    b = load("shd", bin_ms=10, data_root=shd_root)
    assert (b.name, b.n_steps, b.n_inputs, b.n_classes, b.duration_s) == ("shd", 140, 140, 20, 1.4)
    assert b.classes == SHD_CLASSES and b.classes[15] == "fünf"
    assert (len(b.train), len(b.val), len(b.test)) == (5, 1, 6)
    for part in (b.train, b.val, b.test):
        assert part.x.dtype == torch.uint8 and part.x.shape[1:] == (140, 140)
        assert part.y.dtype == torch.int64 and part.speakers.shape == (len(part),)


def test_ssc_loads_train_valid_and_test_files(ssc_root):
    b = load("ssc", bin_ms=5.6, data_root=ssc_root, val_fraction=0.5)
    assert (b.name, b.n_steps, b.n_inputs, b.n_classes) == ("ssc", 250, 140, 35)
    for part, split in ((b.train, "train"), (b.val, "valid"), (b.test, "test")):
        h5 = ssc_root / "SSC" / f"ssc_{split}.h5"
        assert part.x.shape == (5, 250, 140)
        assert np.array_equal(part.y.numpy(), raw(h5)[2])  # the file's own split, not a random one
        assert_matches_reference(part, h5, 700, 5.6, 250, 5)


def test_data_root_from_environment(shd_root, monkeypatch):
    monkeypatch.setenv("DELREC_EDGE_DATA", str(shd_root))
    assert len(load("shd", bin_ms=10).test) == 6


def test_validation_split_is_seeded_and_disjoint(tmp_path):
    root = make_shd_root(tmp_path, n=20, seed=3)
    a = load("shd", bin_ms=20, data_root=root, seed=0, val_fraction=0.25)
    again = load("shd", bin_ms=20, data_root=root, seed=0, val_fraction=0.25, cache=False)
    other = load("shd", bin_ms=20, data_root=root, seed=1, val_fraction=0.25)
    assert (len(a.train), len(a.val)) == (15, 5)
    assert np.array_equal(a.val.speakers, again.val.speakers) and torch.equal(a.val.x, again.val.x)
    assert set(a.val.speakers).isdisjoint(a.train.speakers)
    assert sorted([*a.val.speakers, *a.train.speakers]) == list(range(20))
    assert not np.array_equal(a.val.speakers, other.val.speakers)
    assert_matches_reference(a.train, root / "SHD" / "shd_train.h5", 700, 20, 70, 5)
    assert_matches_reference(a.val, root / "SHD" / "shd_train.h5", 700, 20, 70, 5)


def test_split_indices_bounds():
    train, val = D.split_indices(10, 0.01, seed=0)
    assert len(val) == 1 and len(train) == 9  # at least one validation sample
    train, val = D.split_indices(100, 0.29, seed=0)
    assert len(val) == 29  # exact decimal arithmetic: 0.29 * 100 is 28.999... in floats
    for bad in (dict(n=1, val_fraction=0.1, seed=0), dict(n=10, val_fraction=1.0, seed=0),
                dict(n=10, val_fraction=0.0, seed=0), dict(n=10, val_fraction=0.1, seed=-1)):
        with pytest.raises(UserError):
            D.split_indices(**bad)


# ----------------------------------------------------------------------------- binning


@pytest.mark.parametrize("bin_ms", [10, 1, 5.6, 25])
def test_tonic_path_equals_reference(shd_root, bin_ms):
    b = load("shd", bin_ms=bin_ms, data_root=shd_root, cache=False)
    n_steps = D.steps_for(1.4, bin_ms)
    assert b.n_steps == n_steps
    for part in (b.train, b.val):
        assert_matches_reference(part, shd_root / "SHD" / "shd_train.h5", 700, bin_ms, n_steps, 5)
    assert_matches_reference(b.test, shd_root / "SHD" / "shd_test.h5", 700, bin_ms, n_steps, 5)


def test_exact_step_counts():
    assert D.steps_for(1.4, 5.6) == 250  # 1.4 * 1000 / 5.6 is 250.00000000000003 in floats
    assert D.steps_for(1.4, 10) == 140
    assert D.steps_for(1.0, 3) == 334
    assert D.bin_width_us(5.6) == 5600
    for bad in (0.0001, 0, -1, float("nan"), float("inf")):
        with pytest.raises(UserError):
            D.bin_width_us(bad)


FLOAT16_EDGES = [0.0, 0.125, 0.25, 0.5, 1.0, 1.25, 1.375, 1.5]  # exact in float16 and on many bin edges


@given(
    data=st.data(),
    bin_ms=st.sampled_from([1, 2.5, 5.6, 10, 7.3, 62.5]),
    group=st.sampled_from([1, 2, 5]),
    shuffle=st.booleans(),
)
def test_tonic_binning_equals_reference_on_random_events(data, bin_ms, group, shuffle):
    n_channels = 10 * group
    n = data.draw(st.integers(0, 60))
    times = data.draw(st.lists(st.one_of(st.sampled_from(FLOAT16_EDGES), st.floats(-0.01, 1.6)), min_size=n, max_size=n))
    units = data.draw(st.lists(st.integers(0, n_channels - 1), min_size=n, max_size=n))
    times16 = np.array(times, dtype=np.float16)
    if not shuffle:
        times16 = np.sort(times16)
    units = np.array(units, dtype=np.uint16)
    n_steps = D.steps_for(1.4, bin_ms)
    bin_us = D.bin_width_us(bin_ms)
    # The events exactly as tonic's HSD.__getitem__ builds them.
    events = tonic.io.make_structured_array(times16.astype(np.float64) * 1e6, units, 1, dtype=tonic.datasets.SHD.dtype)
    to_frame = tonic.transforms.ToFrame(
        sensor_size=(n_channels, 1, 1), time_window=bin_us, start_time=0, end_time=n_steps * bin_us, include_incomplete=True
    )
    got = D._frames_from_tonic_events(events, to_frame, n_channels, n_steps, group)
    assert np.array_equal(got, D.frames_from_events(times16, units, n_channels, bin_ms, n_steps, group))


def write_known_shd(root):
    """Test split rows with hand-placed spikes; the train split is random."""
    make_shd_root(root, n=4)
    t_early = [0.0149] * 7  # float16 0.0149002 s = 14900 us: bin 1 at 10 ms
    rows = [
        (t_early + [0.0, 0.5, 1.3994, 1.4, 1.45], [0, 1, 2, 3, 4, 4, 5, 699, 20, 10, 7, 8]),
        ([], []),  # a clip without spikes
        ([0.7] * 300, [0, 1, 2, 3, 4] * 60),  # 300 spikes in one group and bin: saturates
        ([0.5, 0.0149, 1.45, 0.0], [20, 0, 8, 699]),  # unsorted times
    ]
    h5 = root / "SHD" / "shd_test.h5"
    write_hsd_h5(h5, [r[0] for r in rows], [r[1] for r in rows], [0, 1, 2, 3], SHD_CLASSES)
    return h5


def test_known_spikes_land_in_the_right_bins(tmp_path):
    h5 = write_known_shd(tmp_path)
    x = load("shd", bin_ms=10, data_root=tmp_path).test.x
    first = x[0]
    assert int(first[1, 0]) == 6  # channels 0..4 at 14.9 ms: bin 1, input 0 (channel 4 twice)
    assert int(first[1, 1]) == 1  # channel 5 starts input 1
    assert int(first[0, 139]) == 1  # t = 0 is in bin 0; channel 699 is input 139
    assert int(first[50, 4]) == 1  # t = 0.5 s sits exactly on the edge of bin 50
    assert int(first[139, 2]) == 1  # 1.39941 s: last bin
    assert int(first.sum()) == 10  # 1.4 s (float16 1.40039) and 1.45 s are past the end: dropped
    assert int(x[1].sum()) == 0
    assert int(x[2][70, 0]) == 255 and int(x[2].sum()) == 255  # saturated, not wrapped
    assert torch.equal(x[3], x[0].new_tensor(D.frames_from_events(*[r[3] for r in raw(h5)[:2]], 700, 10, 140, 5)))
    assert int(x[3].sum()) == 3
    # A shorter window drops what lies at or after its end.
    short = load("shd", bin_ms=10, data_root=tmp_path, duration_s=0.5).test.x
    assert short.shape[1] == 50 and int(short[0].sum()) == 8
    assert_matches_reference(load("shd", bin_ms=10, data_root=tmp_path).test, h5, 700, 10, 140, 5)


# ----------------------------------------------------------------------------- our dataset folders


def write_folder(out, n_channels=32, duration_s=0.8, n=8):
    rng = np.random.default_rng(7)

    def split(k):
        times = [np.sort(rng.uniform(0, 0.9, 50)) for _ in range(k)]
        units = [rng.integers(0, n_channels, 50) for _ in range(k)]
        return spikefile.SpikeSplit(times, units, rng.integers(0, 3, k), np.arange(k))

    meta = spikefile.DatasetMeta(name="tiny-words", n_channels=n_channels, classes=["ja", "nein", "fünf"], duration_s=duration_s)
    spikefile.write_dataset(out, meta, {"train": split(n), "test": split(n)})
    return out


def test_dataset_folder_loads_through_the_same_path(tmp_path):
    out = write_folder(tmp_path / "ds")
    b = load(out, bin_ms=10)
    assert (b.name, b.n_inputs, b.n_steps, b.n_classes, b.classes) == ("tiny-words", 32, 80, 3, ["ja", "nein", "fünf"])
    assert b.train.x.shape == (7, 80, 32) and len(b.val) == 1
    assert_matches_reference(b.test, out / "SHD" / "shd_test.h5", 32, 10, 80, 1)
    assert_matches_reference(b.val, out / "SHD" / "shd_train.h5", 32, 10, 80, 1)
    assert load(out, bin_ms=10, duration_s=0.5).n_steps == 50


def test_dataset_folder_class_list_must_match_the_file(tmp_path):
    out = write_folder(tmp_path / "ds")
    meta = (out / "dataset.json").read_text(encoding="utf-8").replace('"nein"', '"nee"')
    (out / "dataset.json").write_text(meta, encoding="utf-8")
    with pytest.raises(UserError, match="class names"):
        load(out, bin_ms=10)


def test_unknown_spec(tmp_path):
    with pytest.raises(UserError, match="unknown dataset"):
        load(tmp_path / "nothing-here", bin_ms=10)
    with pytest.raises(UserError, match="dataset.json"):
        load(tmp_path, bin_ms=10)


# ----------------------------------------------------------------------------- cache


def cache_files():
    return sorted(framecache.cache_dir().glob("*.npz"))


def test_cache_hit_serves_identical_arrays(shd_root, monkeypatch):
    first = load("shd", bin_ms=10, data_root=shd_root)
    assert len(cache_files()) == 2

    def must_not_bin(*a, **k):
        raise AssertionError("cache miss")

    monkeypatch.setattr(D, "_bin_split", must_not_bin)
    second = load("shd", bin_ms=10, data_root=shd_root)
    for a, b in ((first.train, second.train), (first.val, second.val), (first.test, second.test)):
        assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y) and np.array_equal(a.speakers, b.speakers)
    assert second.classes == first.classes
    with pytest.raises(AssertionError, match="cache miss"):
        load("shd", bin_ms=20, data_root=shd_root)  # another bin width is another entry


def test_cache_is_invalidated_by_a_rewritten_file(tmp_path):
    root = make_shd_root(tmp_path / "d", n=6, seed=0)
    h5 = root / "SHD" / "shd_test.h5"
    old = load("shd", bin_ms=10, data_root=root).test
    make_shd_root(root, n=6, seed=50)  # touch + rewrite with other spikes
    new = load("shd", bin_ms=10, data_root=root).test
    assert not torch.equal(old.x, new.x)
    assert_matches_reference(new, h5, 700, 10, 140, 5)
    assert len(cache_files()) == 2  # the rewritten files' entries were replaced, not added


def test_cache_is_invalidated_when_size_and_mtime_are_restored(tmp_path):
    root = make_shd_root(tmp_path / "d", n=6, seed=0)
    h5 = root / "SHD" / "shd_test.h5"
    old = load("shd", bin_ms=10, data_root=root).test
    st = h5.stat()
    times, units, labels = raw(h5)
    write_hsd_h5(h5, times, units, (labels + 1) % 20, SHD_CLASSES)  # same spikes, other labels
    os.utime(h5, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert h5.stat().st_size == st.st_size and h5.stat().st_mtime_ns == st.st_mtime_ns
    new = load("shd", bin_ms=10, data_root=root).test
    assert np.array_equal(new.y.numpy(), (old.y.numpy() + 1) % 20)


def test_cache_changed_bin_width_and_cache_off(shd_root):
    a = load("shd", bin_ms=10, data_root=shd_root, cache=False)
    assert cache_files() == []
    b = load("shd", bin_ms=20, data_root=shd_root)
    assert b.n_steps == 70 and b.test.x.shape[1] == 70 and a.test.x.shape[1] == 140
    assert len(cache_files()) == 2


def test_damaged_cache_entry_is_rebuilt(shd_root):
    good = load("shd", bin_ms=10, data_root=shd_root).test
    for f in cache_files():
        f.write_bytes(b"not an npz")
    again = load("shd", bin_ms=10, data_root=shd_root).test
    assert torch.equal(good.x, again.x)
    assert not list(framecache.cache_dir().glob(".*.tmp"))


# ----------------------------------------------------------------------------- errors


def test_missing_files_name_the_paths_and_never_download(tmp_path):
    with pytest.raises(UserError) as err:
        load("shd", bin_ms=10, data_root=tmp_path)
    msg = str(err.value)
    assert str(tmp_path / "SHD" / "shd_train.h5") in msg and "zenkelab.org/datasets" in msg and "\n" not in msg

    with pytest.raises(UserError, match="parent folder"):
        load("shd", bin_ms=10, data_root=make_shd_root(tmp_path / "d", n=2) / "SHD")

    root = make_ssc_root(tmp_path / "ssc", n=2)
    (root / "SSC" / "ssc_valid.h5").unlink()
    with pytest.raises(UserError, match="ssc_valid.h5"):
        load("ssc", bin_ms=10, data_root=root)


def test_h5_without_zip_marker_is_refused_with_a_fix(tmp_path):
    root = make_shd_root(tmp_path, n=2)
    marker = root / "SHD" / "shd_test.h5.zip"
    marker.unlink()
    with pytest.raises(UserError, match="touch") as err:
        load("shd", bin_ms=10, data_root=root)
    assert str(marker) in str(err.value)
    touch_marker(root / "SHD" / "shd_test.h5")
    assert len(load("shd", bin_ms=10, data_root=root).test) == 2


def _truncate(h5):
    data = h5.read_bytes()
    h5.write_bytes(data[: len(data) // 2])


def _garbage(h5):
    h5.write_bytes(os.urandom(4096))


def _drop_labels(h5):
    with h5py.File(h5, "a") as f:
        del f["labels"]


def _labels_out_of_range(h5):
    times, units, labels = raw(h5)
    write_hsd_h5(h5, times, units, np.full(len(labels), 25), SHD_CLASSES)


def _mismatched_row(h5):
    times, units, labels = raw(h5)
    times[1] = times[1][:-3]
    write_hsd_h5(h5, times, units, labels, SHD_CLASSES)


def _single_unit_row(h5):
    times, units, labels = raw(h5)
    units[1] = units[1][:1]  # numpy would broadcast this row against all the times
    write_hsd_h5(h5, times, units, labels, SHD_CLASSES)


def _channel_out_of_range(h5):
    times, units, labels = raw(h5)
    units[0][0] = 700
    write_hsd_h5(h5, times, units, labels, SHD_CLASSES)


@pytest.mark.parametrize(
    "damage, expect",
    [
        (_garbage, "cannot read"),
        (_truncate, "cannot read"),
        (_drop_labels, "labels"),
        (_labels_out_of_range, "label 25"),
        (_mismatched_row, "sample 1 has"),
        (_single_unit_row, "sample 1 has"),
        (_channel_out_of_range, "channel id 700"),
    ],
)
def test_damaged_file_is_a_one_line_user_error(tmp_path, damage, expect):
    root = make_shd_root(tmp_path, n=3)
    h5 = root / "SHD" / "shd_train.h5"
    damage(h5)
    with pytest.raises(UserError, match=expect) as err:
        load("shd", bin_ms=10, data_root=root)
    assert str(h5) in str(err.value) and "\n" not in str(err.value)


def test_int16_overflow_in_tonic_is_refused(tmp_path):
    """ToFrame counts in int16; 33000 spikes of one channel in one bin must not wrap around silently."""
    root = make_shd_root(tmp_path, n=2)
    h5 = root / "SHD" / "shd_test.h5"
    write_hsd_h5(h5, [[0.25] * 33000, [0.5]], [[3] * 33000, [0]], [0, 1], SHD_CLASSES)
    with pytest.raises(UserError, match="32767") as err:
        load("shd", bin_ms=10, data_root=root)
    assert str(h5) in str(err.value)


def test_speaker_disjoint_validation():
    speakers = np.repeat(np.arange(6), 10)
    train, val = D.speaker_split_indices(speakers, 0.25, seed=3)
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(60))
    assert not set(speakers[train]) & set(speakers[val])
    assert len(val) >= 15 and len(set(speakers[train])) >= 2
    again = D.speaker_split_indices(speakers, 0.25, seed=3)
    assert np.array_equal(again[1], val) and not np.array_equal(D.speaker_split_indices(speakers, 0.25, seed=4)[1], val)
    # a tiny fraction still holds out one speaker, a huge one keeps two in training
    assert len(set(speakers[D.speaker_split_indices(speakers, 0.01, 0)[1]])) == 1
    assert len(set(speakers[D.speaker_split_indices(speakers, 0.9, 0)[0]])) == 2
    with pytest.raises(UserError, match="at least 3 training speakers"):
        D.speaker_split_indices(np.repeat(np.arange(2), 5), 0.2, 0)

    # by speaker only when test speakers are unheard and training has 3 or more
    assert D.validation_split(speakers, np.array([7, 8]), 0.2, 0)[2] == "speaker"
    assert D.validation_split(speakers, np.array([0, 8]), 0.2, 0)[2] == "random"
    assert D.validation_split(np.repeat(np.arange(2), 5), np.array([7]), 0.2, 0)[2] == "random"


def test_speaker_split_dataset_validates_on_its_own_speakers(tmp_path):
    rng = np.random.default_rng(0)
    splits = {}
    for name, ids in (("train", range(5)), ("test", (5, 6))):
        spk = np.repeat(np.array(list(ids)), 6)
        splits[name] = spikefile.SpikeSplit(
            times=[spikefile.spike_time_for_step(rng.integers(0, 100, 5), 1e-3) for _ in spk],
            units=[rng.integers(0, 4, 5) for _ in spk], labels=np.arange(spk.size) % 2, speakers=spk)
    meta = spikefile.DatasetMeta(name="spk", n_channels=4, classes=["a", "b"], duration_s=0.1)
    out = tmp_path / "spk"
    out.mkdir()
    spikefile.write_dataset(out, meta, splits)
    b = load(out, bin_ms=10, seed=1)
    assert b.val_split == "speaker" and len(b.train) + len(b.val) == 30
    assert not set(b.train.speakers) & set(b.val.speakers) and not set(b.val.speakers) & set(b.test.speakers)
