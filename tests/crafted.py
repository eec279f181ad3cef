"""Hand-built wav files, valid and broken, for the bad-input tests.

``write_matrix(folder)`` writes one file per case of the bad-input matrix and
returns what each should give: ``None`` for a file that must be built, or a
fragment of the reason it must be skipped with.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
from wavs import tone, write_wav

PCM_GUID_TAIL = b"\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"


def chunk(cid: bytes, payload: bytes, size: int | None = None) -> bytes:
    """A RIFF chunk, padded to an even length; ``size`` overrides the declared size."""
    pad = b"\0" if len(payload) % 2 else b""
    return cid + struct.pack("<I", len(payload) if size is None else size) + payload + pad


def riff(chunks, form: bytes = b"WAVE", magic: bytes = b"RIFF", size: int | None = None) -> bytes:
    body = form + b"".join(chunks)
    return magic + struct.pack("<I", len(body) if size is None else size) + body


def fmt(tag=1, channels=1, rate=22050, bits=16, block=None, byte_rate=None, ext: bytes = b"") -> bytes:
    block = channels * ((bits + 7) // 8) if block is None else block
    byte_rate = rate * block if byte_rate is None else byte_rate
    return chunk(b"fmt ", struct.pack("<HHIIHH", tag, channels, rate, byte_rate, block, bits) + ext)


def extensible(subformat: int, valid_bits: int, mask: int = 0, tail: bytes = PCM_GUID_TAIL) -> bytes:
    """The 24 extra bytes of a WAVE_FORMAT_EXTENSIBLE fmt chunk."""
    return struct.pack("<HHI", 22, valid_bits, mask) + struct.pack("<I", subformat) + tail


def pcm16(x: np.ndarray) -> bytes:
    return np.clip(np.round(np.asarray(x) * 32767), -32768, 32767).astype("<i2").tobytes()


def wav16(x: np.ndarray, channels: int = 1, rate: int = 22050) -> bytes:
    """A plain 16-bit PCM wav of interleaved samples ``x``."""
    return riff([fmt(channels=channels, rate=rate), chunk(b"data", pcm16(x))])


def write_matrix(folder) -> dict:
    """Write the bad-input matrix into ``folder``; ``{file name: None or reason fragment}``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    x = tone(1.0)
    good = pcm16(x)
    cases = {}

    def put(name, data, expect):
        (folder / name).write_bytes(data)
        cases[name] = expect

    def put_wav(name, signal, fmt_name, expect=None):
        write_wav(folder / name, signal, fmt=fmt_name)
        cases[name] = expect

    full = wav16(x)
    # Bad: each is skipped with a reason.
    put("not_riff.wav", b"ID3\x04\0\0\0\0\0\0" + bytes(range(256)) * 8, "not a wav file: starts with 'ID3")
    put("riff_not_wave.wav", riff([chunk(b"avih", b"\0" * 56)], form=b"AVI "), "RIFF form type is 'AVI '")
    put("truncated_data.wav", full[: len(full) // 2], "truncated")
    put("claims_more_frames.wav", riff([fmt(), chunk(b"data", good, size=4 * len(good))]), "header declares 88200 frames")
    put("huge_declared_size.wav", riff([fmt(), chunk(b"data", good[:1000], size=0xFFFFFFF0)]), "truncated")
    put("zero_bytes.wav", b"", "empty file (0 bytes)")
    put("zero_frames.wav", riff([fmt(), chunk(b"data", b"")]), "no audio samples (0 frames)")
    put("mp3_inside.wav", riff([fmt(tag=0x55, bits=0, block=1), chunk(b"data", b"\xff\xfb" * 500)]), "compressed or unsupported encoding: MP3")
    put("adpcm.wav", riff([fmt(tag=0x11, bits=4, block=256, ext=struct.pack("<HH", 2, 505)), chunk(b"data", b"\0" * 2560)]), "IMA ADPCM")
    put("odd_extensible.wav", riff([fmt(tag=0xFFFE, ext=extensible(1, 16, tail=b"\x21\x07\xd3\x11\x86\x44\xc8\xc1\xca\x00\x00\x00")), chunk(b"data", good)]), "WAVE_FORMAT_EXTENSIBLE sub-format")
    nan = x.astype(np.float32)
    nan[500] = np.nan
    put_wav("float_nan.wav", nan, "float32", "NaN or infinity")
    inf = x.astype(np.float32)
    inf[7] = -np.inf
    put_wav("float_inf.wav", inf, "float32", "NaN or infinity")
    put_wav("digital_silence.wav", np.zeros(22050), "int16", "digital silence: every sample is 0")
    put_wav("dc_offset.wav", np.full(22050, 0.25), "int16", "constant signal (DC offset only)")
    put_wav("too_short.wav", x[:1500], "int16", "too short")
    put("zero_channels.wav", riff([fmt(channels=0, block=2), chunk(b"data", good)]), "0 channels")
    put("rate_zero.wav", riff([fmt(rate=0), chunk(b"data", good)]), "sample rate 0 Hz")
    put("rate_absurd.wav", riff([fmt(rate=2_000_000_000), chunk(b"data", good)]), "implausible sample rate")
    put("no_data_chunk.wav", riff([fmt()]), "no data chunk")
    put("html_page.wav", b"<!DOCTYPE html><html>404</html>", "a text/HTML file")
    (folder / "folder.wav").mkdir()
    cases["folder.wav"] = "is a directory"

    # Valid: each is built.
    put_wav("pcm_8bit.wav", x, "uint8")
    put_wav("pcm_24bit.wav", x, "int24")
    put_wav("float_32bit.wav", x, "float32")
    put_wav("float_64bit.wav", x, "float64")
    put_wav("six_channels.wav", np.repeat(x[:, None], 6, axis=1) * np.linspace(0.2, 1.0, 6), "int16")
    six = np.repeat(x[:, None], 6, axis=1).ravel()
    put("six_channels_extensible.wav", riff([fmt(tag=0xFFFE, channels=6, ext=extensible(1, 16, 0x3F)), chunk(b"data", pcm16(six))]), None)
    put_wav("extreme_clipping.wav", np.clip(50 * x, -1, 1), "int16")
    put_wav("música ☕ naïve.wav", x, "int16")
    put("metadata_chunks.wav", riff([fmt(), chunk(b"bext", b"\0" * 602), chunk(b"data", good), chunk(b"LIST", b"INFOISFT\x04\0\0\0abc\0")]), None)
    put("streaming_riff_size.wav", riff([fmt(), chunk(b"data", good)], size=0xFFFFFFFF), None)
    put("streaming_data_size.wav", riff([fmt(), chunk(b"data", good, size=0xFFFFFFFF)], size=0xFFFFFFFF), None)
    return cases


def write_non_utf8_name(folder) -> str:
    """A valid wav whose name is not valid UTF-8 (common on old Linux disks); returns its name."""
    name = os.fsdecode(b"caf\xe9.wav")  # latin-1 bytes
    write_wav(Path(folder) / name, tone(1.0))
    return name
