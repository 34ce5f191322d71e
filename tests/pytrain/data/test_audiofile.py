"""Reading WAV files of every common form into float32 mono at 16 kHz."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.io import wavfile

from pytrain.data.audiofile import load_audio, resample, to_float
from codegen.common.errors import UserError


def tone(sr: int, seconds: float = 0.25, freq: float = 440.0, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    return amplitude * np.sin(2 * np.pi * freq * t)


def as_pcm(x: np.ndarray, dtype) -> np.ndarray:
    """Float in [-1, 1] -> the WAV sample type (unsigned 8-bit is offset, like the format stores it)."""
    if dtype == np.uint8:
        return np.floor(x * 127 + 128.5).astype(np.uint8)
    if np.dtype(dtype).kind == "f":
        return x.astype(dtype)
    scale = float(np.iinfo(dtype).max)
    return np.floor(x * scale + 0.5).astype(dtype)


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int32, np.float32, np.float64])
def test_sample_formats_read_back_close_to_the_original(tmp_path, dtype):
    x = tone(16000)
    path = tmp_path / "a.wav"
    wavfile.write(path, 16000, as_pcm(x, dtype))
    y = load_audio(path)
    assert y.dtype == np.float32 and y.shape == x.shape
    tolerance = 1.0 / 64 if dtype == np.uint8 else 1e-4
    np.testing.assert_allclose(y, x, atol=tolerance)


def test_24_bit_pcm(tmp_path):
    """scipy cannot write 24-bit PCM: write the RIFF file by hand (3 bytes per sample, little-endian)."""
    x = tone(16000)
    ints = np.floor(x * (2**23 - 1) + 0.5).astype(np.int32)
    raw = np.stack([(ints >> s) & 0xFF for s in (0, 8, 16)], axis=1).astype(np.uint8).tobytes()
    fmt = (1).to_bytes(2, "little") + (1).to_bytes(2, "little") + (16000).to_bytes(4, "little")
    fmt += (16000 * 3).to_bytes(4, "little") + (3).to_bytes(2, "little") + (24).to_bytes(2, "little")
    body = b"WAVE" + b"fmt " + len(fmt).to_bytes(4, "little") + fmt + b"data" + len(raw).to_bytes(4, "little") + raw
    path = tmp_path / "a24.wav"
    path.write_bytes(b"RIFF" + len(body).to_bytes(4, "little") + body)
    y = load_audio(path)
    np.testing.assert_allclose(y, x, atol=1e-5)


def test_stereo_is_mixed_to_the_mean_of_the_channels(tmp_path):
    left, right = tone(16000, freq=300), tone(16000, freq=500, amplitude=0.25)
    path = tmp_path / "st.wav"
    wavfile.write(path, 16000, np.stack([left, right], axis=1).astype(np.float32))
    np.testing.assert_allclose(load_audio(path), (left + right) / 2, atol=1e-6)


@pytest.mark.parametrize("sr", [8000, 11025, 22050, 44100, 48000])
def test_resampled_to_16k_with_the_right_length(tmp_path, sr):
    x = tone(sr, seconds=0.3, freq=440.0)
    path = tmp_path / f"r{sr}.wav"
    wavfile.write(path, sr, as_pcm(x, np.int16))
    y = load_audio(path, target_sr=16000)
    assert y.size == math.ceil(x.size * 16000 / sr)
    # Still a 440 Hz tone of the same amplitude (away from the filter's edge effects).
    middle = y[800:-800]
    assert abs(np.sqrt(np.mean(middle**2)) - 0.5 / np.sqrt(2)) < 0.01
    spectrum = np.abs(np.fft.rfft(middle * np.hanning(middle.size)))
    assert abs(np.argmax(spectrum) * 16000 / middle.size - 440) < 16000 / middle.size + 1


def test_resample_identity_and_empty():
    x = np.arange(10, dtype=np.float32)
    assert resample(x, 16000, 16000) is not None and np.array_equal(resample(x, 16000, 16000), x)
    assert resample(np.zeros(0), 8000, 16000).size == 0


def test_to_float_full_scale():
    assert to_float(np.array([0, 128, 255], np.uint8)).tolist() == [-1.0, 0.0, 127 / 128]
    assert to_float(np.array([-32768, 0], np.int16)).tolist() == [-1.0, 0.0]
    assert to_float(np.array([2.0, -3.0], np.float32)).tolist() == [1.0, -1.0]


def test_empty_wav_is_a_user_error(tmp_path):
    path = tmp_path / "empty.wav"
    wavfile.write(path, 16000, np.zeros(0, np.int16))
    with pytest.raises(UserError, match="empty.wav: contains no audio samples"):
        load_audio(path)


@pytest.mark.parametrize("content", [b"", b"this is not audio at all", b"RIFF\x00\x00\x00\x00WAVEjunk"])
def test_garbage_is_a_user_error_naming_the_file(tmp_path, content):
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(UserError) as info:
        load_audio(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message


def test_missing_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        load_audio(tmp_path / "nope.wav")


def _riff_wav(path, format_tag: int, bits: int, payload: bytes) -> None:
    import struct

    fmt = struct.pack("<HHIIHH", format_tag, 1, 8000, 8000 * bits // 8, bits // 8, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(payload)) + payload
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


def test_unsupported_sample_format_is_a_user_error(tmp_path):
    path = tmp_path / "codec.wav"
    _riff_wav(path, 0x1234, 8, bytes(range(256)) * 4)  # a codec no reader knows
    with pytest.raises(UserError, match="codec.wav"):
        load_audio(path)


@pytest.mark.parametrize("fmt,subtype,suffix", [("FLAC", "PCM_16", ".flac"), ("OGG", "VORBIS", ".ogg"), ("WAV", "PCM_16", ".WAV")])
def test_flac_and_ogg_are_read_through_soundfile(tmp_path, fmt, subtype, suffix):
    import soundfile

    from pytrain.data.audiofile import is_audio_file, native_sample_rate

    x = tone(8000, seconds=0.5, amplitude=0.4)
    path = tmp_path / f"a{suffix}"
    soundfile.write(str(path), x, 8000, format=fmt, subtype=subtype)
    assert is_audio_file(path) and native_sample_rate(path) == 8000
    y = load_audio(path, target_sr=8000)
    assert y.dtype == np.float32 and y.size == x.size
    lossy = subtype == "VORBIS"
    np.testing.assert_allclose(y[400:-400], x[400:-400], atol=0.05 if lossy else 1e-4)


def test_other_suffixes_are_not_audio(tmp_path):
    from pytrain.data.audiofile import is_audio_file

    for name in ("a.mp4", "a.txt", ".hidden.wav"):
        (tmp_path / name).write_bytes(b"x")
        assert not is_audio_file(tmp_path / name)
    assert not is_audio_file(tmp_path)
