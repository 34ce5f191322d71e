"""Reading users' audio files (WAV, FLAC, OGG/Vorbis): any common sample rate, channel count and sample format
-> float32 mono.

Files are decoded by soundfile (libsndfile); WAV files that libsndfile refuses are tried once more with scipy.
"""

from __future__ import annotations

import math
import struct
import sys
import warnings
from pathlib import Path

import numpy as np

from codegen.common.errors import UserError

MIN_SAMPLE_RATE = 4000
MAX_SAMPLE_RATE = 384000
# resample_poly designs a filter about 20 x max(up, down) taps long: a rate like 47,999 Hz (16000/47999
# after reduction) would need millions of taps. Every usual rate reduces to factors far below this.
MAX_RESAMPLE_FACTOR = 2000


def check_rate_range(sr: int, where: str) -> None:
    """Refuse, with one line naming ``where``, a sample rate outside 4..384 kHz."""
    if not MIN_SAMPLE_RATE <= sr <= MAX_SAMPLE_RATE:
        raise UserError(f"{where}: sample rate {sr} Hz is outside the supported {MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE} Hz")


def check_sample_rate(sr: int, target_sr: int, where: str) -> None:
    """Refuse, with one line naming ``where``, a sample rate outside 4..384 kHz or one whose conversion to
    ``target_sr`` needs an impractically long polyphase filter (an odd rate such as 47,999 Hz)."""
    check_rate_range(sr, where)
    g = math.gcd(int(sr), int(target_sr))
    if max(sr // g, target_sr // g) > MAX_RESAMPLE_FACTOR:
        raise UserError(f"{where}: sample rate {sr} Hz cannot be converted to {target_sr} Hz by a practical "
                        f"polyphase filter (ratio {target_sr // g}/{sr // g}); resample it to a usual rate first")


def wav_data_sizes(path: Path) -> tuple[int, int] | None:
    """(bytes of audio the RIFF header declares, bytes the file holds after the data chunk's header), or None
    when the file is not a RIFF/WAVE file or declares a placeholder size (a stream written without seeking)."""
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                return None
            cid, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if cid == b"data":
                start = f.tell()
                f.seek(0, 2)
                available = f.tell() - start
                return None if size in (0, 0xFFFFFFFF) else (size, available)
            f.seek(size + (size & 1), 1)  # chunks are padded to an even length


def resample(x: np.ndarray, sr_from: int, sr_to: int) -> np.ndarray:
    """Polyphase resampling by the rational factor sr_to / sr_from (reduced by their gcd).

    The output has ceil(len(x) * sr_to / sr_from) samples.
    """
    from scipy.signal import resample_poly

    if sr_from <= 0 or sr_to <= 0:
        raise ValueError(f"sample rates must be positive, got {sr_from} -> {sr_to}")
    if sr_from == sr_to or len(x) == 0:
        return np.asarray(x)
    g = math.gcd(int(sr_from), int(sr_to))
    return resample_poly(x, int(sr_to) // g, int(sr_from) // g)


def to_float(samples: np.ndarray) -> np.ndarray:
    """PCM or float samples -> float32 in [-1, 1].

    Integer PCM is scaled by its full scale: unsigned 8-bit is offset by 128 (as WAV stores it), signed
    types are divided by 2^(bits-1). scipy returns 24-bit PCM left-justified in int32, so it scales as 32-bit.
    Float data is clipped to [-1, 1].
    """
    kind = samples.dtype.kind
    if kind == "u":
        half = float(1 << (8 * samples.dtype.itemsize - 1))
        return ((samples.astype(np.float64) - half) / half).astype(np.float32)
    if kind == "i":
        full_scale = float(1 << (8 * samples.dtype.itemsize - 1))
        return (samples.astype(np.float64) / full_scale).astype(np.float32)
    if kind == "f":
        return np.clip(samples, -1.0, 1.0).astype(np.float32)
    raise ValueError(f"unsupported sample type {samples.dtype}")


AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga")  # what soundfile decodes on every platform


def is_audio_file(path: Path) -> bool:
    """A visible regular file whose suffix is one of :data:`AUDIO_SUFFIXES` (any case)."""
    return path.is_file() and path.suffix.lower() in AUDIO_SUFFIXES and not path.name.startswith(".")


def _read(path: Path) -> tuple[int, np.ndarray]:
    """(sample rate, samples) with soundfile as float64 in [-1, 1]; scipy for WAVs libsndfile refuses."""
    import soundfile

    try:
        data, sr = soundfile.read(str(path), dtype="float64", always_2d=False)
        return int(sr), data
    except Exception as soundfile_error:  # noqa: BLE001 - any parse failure means "unreadable"
        if path.suffix.lower() != ".wav":
            raise
        from scipy.io import wavfile

        try:
            with warnings.catch_warnings():
                # Unknown chunks (LIST, cue, ...) only produce a warning; the audio itself is read fine.
                warnings.simplefilter("ignore", wavfile.WavFileWarning)
                return wavfile.read(path)
        except Exception:  # noqa: BLE001
            raise soundfile_error from None


def native_sample_rate(path: str | Path) -> int:
    """The sample rate stored in an audio file's header, without decoding it (UserError if unreadable)."""
    import soundfile

    path = Path(path)
    try:
        rate = int(soundfile.info(str(path)).samplerate)
    except Exception:  # noqa: BLE001 - let load_audio produce the one-line reason
        rate = int(_load(path)[0])
    check_rate_range(rate, str(path))
    return rate


def load_audio(path: str | Path, target_sr: int = 16000) -> np.ndarray:
    """Read an audio file as float32 mono at ``target_sr``: channels averaged, samples in [-1, 1].

    Raises :class:`UserError` naming the file when it cannot be read or holds no samples.
    """
    sr, x = _load(Path(path))
    check_sample_rate(int(sr), int(target_sr), str(path))
    return np.asarray(resample(x, int(sr), int(target_sr)), dtype=np.float32)


def _load(path: Path) -> tuple[int, np.ndarray]:
    """(native sample rate, float32 mono samples) or a one-line :class:`UserError`."""
    if path.is_dir():
        raise UserError(f"{path}: is a directory, not an audio file")
    if not path.exists():
        raise UserError(f"{path}: no such file")
    try:
        sr, samples = _read(path)
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory, not an audio file") from None
    except Exception as exc:  # noqa: BLE001 - report any decoder failure as one line
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"{path}: not a readable audio file ({reason})") from None
    samples = np.asarray(samples)
    if samples.size == 0:
        raise UserError(f"{path}: contains no audio samples")
    check_rate_range(int(sr), str(path))
    if samples.dtype.kind == "f" and not np.all(np.isfinite(samples)):
        raise UserError(f"{path}: holds NaN or infinite samples")
    sizes = wav_data_sizes(path)
    if sizes is not None and sizes[1] < sizes[0]:
        print(f"warning: {path} is truncated: its header declares {sizes[0]} bytes of audio, the file holds "
              f"{sizes[1]}; the clip is used as far as it goes", file=sys.stderr)
    try:
        x = to_float(samples)
    except ValueError as exc:
        raise UserError(f"{path}: {exc}") from None
    if x.ndim == 2:
        x = x.mean(axis=1)
    elif x.ndim != 1:
        raise UserError(f"{path}: unexpected sample array shape {samples.shape}")
    return int(sr), x
