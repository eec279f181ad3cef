"""Writing test audio in every container the package reads, with real encoders.

libsndfile (through soundfile) encodes AU, AIFF, FLAC, Ogg Vorbis/Opus and
MP3 (LAME); integer input is passed as integers, so the lossless files hold
exactly the samples the matching WAV holds.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import soundfile as sf
from wavs import encode, write_pcm24
from scipy.io import wavfile

#: Lossless formats: name -> (suffix, soundfile format, endian).
LOSSLESS = {
    "wav": (".wav", None, None),
    "au": (".au", "AU", "BIG"),
    "au-le": (".snd", "AU", "LITTLE"),
    "aiff": (".aiff", "AIFF", "FILE"),
    "flac": (".flac", "FLAC", "FILE"),
}
#: Lossy formats: name -> (suffix, soundfile format, subtype).
LOSSY = {"mp3": (".mp3", "MP3", "MPEG_LAYER_III"), "ogg": (".ogg", "OGG", "VORBIS"), "opus": (".opus", "OGG", "OPUS")}

# Bits -> (WAV sample format of tests/wavs.py, soundfile subtype).
_DEPTHS = {8: ("uint8", "PCM_S8"), 16: ("int16", "PCM_16"), 24: ("int24", "PCM_24"), 32: ("int32", "PCM_32"), "float": ("float32", "FLOAT")}


def quantise(x: np.ndarray, bits) -> np.ndarray:
    """The samples :func:`write_lossless` stores for ``x``, scaled to [-1, 1] as float64."""
    x = np.asarray(x, dtype=np.float64)
    if bits == "float":
        return x.astype(np.float32).astype(np.float64)
    if bits == 8:
        return (encode(x, "uint8").astype(np.float64) - 128) / 2**7
    if bits == 16:
        return encode(x, "int16") / 2**15
    data = encode(x, "int32")
    return (data & ~np.int32(0xFF) if bits == 24 else data) / 2**31


def write_lossless(path, x: np.ndarray, fmt: str, bits=16, rate: int = 22050) -> Path:
    """Write ``x`` (float in [-1, 1], (n,) or (n, channels)) as ``bits``-bit PCM in ``fmt``.

    Give an even number of frames: libsndfile counts the pad byte of an odd
    8-bit AIFF as one more frame.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wav_fmt, subtype = _DEPTHS[bits]
    if fmt == "wav":
        data = encode(np.asarray(x, dtype=np.float64), wav_fmt)
        if wav_fmt == "int24":
            write_pcm24(path, data, rate)
        else:
            wavfile.write(path, rate, data)
        return path
    _, container, endian = LOSSLESS[fmt]
    if bits == "float":
        data = x.astype(np.float32)
    elif bits == 8:
        data = (encode(x, "uint8").astype(np.int16) - 128) << 8  # libsndfile keeps the top byte
    elif bits == 16:
        data = encode(x, "int16")
    else:
        data = encode(x, "int32")
        if bits == 24:
            data = data & ~np.int32(0xFF)
    sf.write(path, data, rate, format=container, subtype=subtype, endian=endian)
    return path


def write_lossy(path, x: np.ndarray, fmt: str, rate: int = 22050) -> Path:
    """Write ``x`` encoded as MP3, Ogg Vorbis or Ogg Opus."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _, container, subtype = LOSSY[fmt]
    sf.write(path, np.asarray(x, dtype=np.float64), rate, format=container, subtype=subtype)
    return path


def write_marsyas_au(path, x: np.ndarray, rate: int = 22050, little_endian: bool = False, unknown_size: bool = False) -> Path:
    """A 16-bit PCM .au file written byte by byte, as Marsyas wrote GTZAN's (big-endian)."""
    e = "<" if little_endian else ">"
    samples = encode(x, "int16").astype(e + "i2").tobytes()
    size = 0xFFFFFFFF if unknown_size else len(samples)
    header = (b"dns." if little_endian else b".snd") + struct.pack(e + "5I", 28, size, 3, rate, 1) + b"\0" * 4
    Path(path).write_bytes(header + samples)
    return Path(path)


def write_sowt_aifc(path, x: np.ndarray, rate: int = 22050) -> Path:
    """A 16-bit AIFF-C file with little-endian ('sowt') samples, chunk by chunk."""
    samples = encode(x, "int16").astype("<i2").tobytes()
    exponent, mantissa = _extended(rate)
    comm = struct.pack(">hIh", 1, len(x), 16) + struct.pack(">HQ", exponent, mantissa) + b"sowt" + b"\x00\x00"
    ssnd = struct.pack(">II", 0, 0) + samples
    body = b"AIFC" + b"FVER" + struct.pack(">II", 4, 0xA2805140)
    body += b"COMM" + struct.pack(">I", len(comm)) + comm + b"SSND" + struct.pack(">I", len(ssnd)) + ssnd
    Path(path).write_bytes(b"FORM" + struct.pack(">I", len(body)) + body)
    return Path(path)


def _extended(value: int) -> tuple[int, int]:
    """A positive integer as the exponent and mantissa of an 80-bit extended float."""
    shift = value.bit_length() - 1
    return 16383 + shift, value << (63 - shift)
