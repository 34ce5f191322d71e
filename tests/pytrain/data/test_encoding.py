"""Datasets from audio through the integer front end: events per count, the recorded front end and its checks."""

from __future__ import annotations

import json

import numpy as np
import pytest
from audio_data import make_audio_dataset

from codegen.common.errors import UserError
from pytrain.data.encoding import counts_to_events, make_encoder
from pytrain.data.loader import check_same_frontend, load_data
from pytrain.data.spikefile import read_meta


@pytest.fixture(scope="module")
def audio_dataset(tmp_path_factory):
    return make_audio_dataset(tmp_path_factory.mktemp("audio") / "ds")


def test_counts_become_one_event_per_count_at_the_bin():
    counts = np.zeros((4, 3), np.uint8)
    counts[0, 2], counts[3, 0], counts[3, 1] = 2, 1, 5
    steps, channels = counts_to_events(counts)
    assert steps.tolist() == [0, 0, 3, 3, 3, 3, 3, 3] and channels.tolist() == [2, 2, 0, 1, 1, 1, 1, 1]
    assert steps.dtype == np.int32 and channels.dtype == np.uint16


def test_encoders():
    clips = [np.sin(np.arange(8000) * 0.3) * np.linspace(0, 0.5, 8000)]
    events, pcm = make_encoder("integer").encode(clips)
    assert pcm[0].dtype == np.int16 and events[0][0].max() < 50
    events, pcm = make_encoder("float").encode(clips)
    assert pcm == [None] and events[0][0].max() < 500
    with pytest.raises(UserError, match="unknown front end"):
        make_encoder("cochlea")


def test_the_dataset_records_its_front_end(audio_dataset):
    meta = read_meta(audio_dataset)
    bundle = load_data(str(audio_dataset), bin_ms=10, progress=False)
    assert bundle.frontend_sha256 == meta.front_end["sha256"] and bundle.frontend.hop_ms == 10.0
    assert bundle.root == audio_dataset.absolute() and bundle.train.x.max() > 0
    check_same_frontend(bundle, meta.front_end["sha256"], "the run")
    with pytest.raises(UserError, match="must be the same"):
        check_same_frontend(bundle, "0" * 64, "the run")
    with pytest.raises(UserError, match="records no front end"):
        check_same_frontend(bundle, None, "the run")


def test_the_network_bin_must_equal_the_hop(audio_dataset):
    with pytest.raises(UserError, match="must be equal"):
        load_data(str(audio_dataset), bin_ms=5, progress=False)


def test_a_replaced_front_end_file_is_refused(audio_dataset, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(audio_dataset, copy)
    from codegen.integer.frontend import FrontEndConfig, design
    from codegen.integer.modelfile import save_frontend

    save_frontend(design(FrontEndConfig(offset_db=3.0)), copy / "frontend.int.npz")
    with pytest.raises(UserError, match="sha256 differs"):
        load_data(str(copy), bin_ms=10, cache=False, progress=False)
    doc = json.loads((copy / "dataset.json").read_text())
    doc["version"] = 7
    (copy / "dataset.json").write_text(json.dumps(doc))
    with pytest.raises(UserError, match="unsupported dataset format version 7"):
        read_meta(copy)


def test_the_front_end_follows_the_recordings_sample_rate():
    from codegen.common.errors import UserError
    from codegen.integer.frontend import FrontEndConfig
    from pytrain.data.encoding import encoder_for_rate
    from pytrain.data.frontend import front_end_for_rate

    for rate in (16000, 22050, 44100, 48000):
        assert encoder_for_rate(rate).config == FrontEndConfig()  # wide-band recordings keep the default
    for rate, f_high in ((8000, 3800.0), (11025, 3800.0), (12000, 3800.0), (6000, 2850.0)):
        enc = encoder_for_rate(rate)
        assert enc.config == FrontEndConfig(sample_rate=8000, f_high=f_high), rate
        assert enc.frontend.hop == 80 and enc.frontend.frame == 128  # the same 10 ms bins, a 16 ms frame
    assert encoder_for_rate(8000, "float").config == front_end_for_rate(8000)
    for kind in ("integer", "float"):
        with pytest.raises(UserError):
            encoder_for_rate(0, kind)


def test_front_end_settings_are_typed_validated_and_applied():
    from codegen.integer.frontend import FrontEndConfig
    from pytrain.data.encoding import encoder_for_rate, parse_settings

    settings = parse_settings(["offset_db=6", "pool-bins=1", "depth_db=45.5"])
    assert settings == {"offset_db": 6.0, "pool_bins": 1, "depth_db": 45.5}
    assert isinstance(settings["pool_bins"], int)
    assert parse_settings(None) == {} and parse_settings([]) == {}
    assert encoder_for_rate(8000, settings=settings).config == FrontEndConfig(
        sample_rate=8000, f_high=3800.0, offset_db=6.0, pool_bins=1, depth_db=45.5)
    for bad, message in ((["offset"], "expected KEY=VALUE"), (["colour=red"], "expected KEY=VALUE"),
                         (["pool_bins=two"], "is not a int"), (["pool_bins=3"], "pool_bins must be one of"),
                         (["f_high=9000"], "Nyquist")):
        with pytest.raises(UserError, match=message):
            parse_settings(bad)
    with pytest.raises(UserError, match="integer front end only"):
        parse_settings(["offset_db=6"], "float")
    with pytest.raises(UserError, match="Nyquist"):  # valid at 16 kHz, not at the 8 kHz the recordings need
        encoder_for_rate(8000, settings=parse_settings(["f_high=7000"]))


def test_data_wav_records_the_front_end_settings(tmp_path, capsys):
    from pytrain.cli import main
    from pytrain.data.spikefile import read_meta

    from audio_data import make_wav_folder

    root = make_wav_folder(tmp_path / "wav")
    out = tmp_path / "ds"
    assert main(["data", "wav", "--root", str(root), "--out", str(out), "--front-end-set", "offset_db=6",
                 "--front-end-set", "pool_bins=1"]) == 0
    cfg = read_meta(out).front_end["config"]
    assert cfg["offset_db"] == 6.0 and cfg["pool_bins"] == 1
    assert main(["data", "wav", "--root", str(root), "--out", str(tmp_path / "no"), "--front-end-set", "x=1"]) == 2
    assert "expected KEY=VALUE" in capsys.readouterr().err and not (tmp_path / "no").exists()
