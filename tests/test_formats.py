"""Every container besides WAV: exact lossless samples, lossy windows, bad files, bounded memory.

The files are written by real encoders (libsndfile's FLAC, Vorbis, Opus and
LAME through soundfile), or byte by byte where a layout matters (Marsyas
.au, AIFF-C 'sowt'); the references are computed with numpy from the
samples that were written.
"""

import json
import struct
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest
from encoded import LOSSLESS, LOSSY, quantise, write_lossless, write_lossy, write_marsyas_au, write_sowt_aifc
from wavs import analyse_track, read_signal, tone, write_wav

from knn_genre.audio import open_audio, read_audio
from knn_genre.audio.synth import synthesize
from knn_genre.errors import AudioError
from knn_genre.features.analysis import analyse_file
from knn_genre.features.families import GaussianFamily
from knn_genre.features.params import MFCCParams

# An even number of frames (see encoded.write_lossless).
N = 11024


def signal(channels=1, seconds=None, seed=0):
    x = tone(seconds or N / 22050, seed=seed)[: None if seconds else N]
    return np.stack([x, -0.5 * x], axis=1) if channels == 2 else x


def formats_for(bits):
    # FLAC holds 8 to 24-bit integers only.
    return [f for f in LOSSLESS if f != "flac" or bits in (8, 16, 24)]


@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("bits", [8, 16, 24, 32, "float"])
def test_lossless_containers_give_bit_identical_samples(tmp_path, bits, channels):
    x = signal(channels)
    expected = quantise(x, bits).reshape(N, -1).mean(axis=1)
    for fmt in formats_for(bits):
        path = write_lossless(tmp_path / f"clip{LOSSLESS[fmt][0]}", x, fmt, bits)
        got, rate = read_audio(path)
        assert rate == 22050
        np.testing.assert_array_equal(got, expected, err_msg=f"{fmt} {bits}-bit")


def test_lossless_containers_give_identical_gaussians(tmp_path):
    x = signal(2, seconds=1.0)
    reference = analyse_track(write_wav(tmp_path / "ref.wav", x))
    family = GaussianFamily(MFCCParams())
    segments = analyse_file(tmp_path / "ref.wav", family, window_seconds=0.4).arrays
    for fmt in ("au", "au-le", "aiff", "flac"):
        path = write_lossless(tmp_path / f"clip{LOSSLESS[fmt][0]}", x, fmt, 16)
        mean, cov = analyse_track(path)
        np.testing.assert_array_equal(mean, reference[0], err_msg=fmt)
        np.testing.assert_array_equal(cov, reference[1], err_msg=fmt)
        got = analyse_file(path, family, window_seconds=0.4).arrays
        for key in segments:
            np.testing.assert_array_equal(got[key], segments[key], err_msg=f"{fmt} segments")


@pytest.mark.parametrize("little_endian, unknown_size", [(False, False), (True, False), (False, True)])
def test_marsyas_au_reads_as_its_wav_conversion(tmp_path, little_endian, unknown_size):
    x = tone(1.0)
    au = write_marsyas_au(tmp_path / "blues.00000.au", x, little_endian=little_endian, unknown_size=unknown_size)
    wav = write_wav(tmp_path / "blues.00000.wav", x)
    np.testing.assert_array_equal(read_signal(au), read_signal(wav))
    for a, b in zip(analyse_track(au), analyse_track(wav)):
        np.testing.assert_array_equal(a, b)


def test_little_endian_aifc_and_resampled_rates(tmp_path):
    x = signal()
    np.testing.assert_array_equal(read_signal(write_sowt_aifc(tmp_path / "s.aifc", x)), quantise(x, 16))
    # Another rate goes through the same resampling as WAV.
    y = tone(0.5, rate=44100)
    wav = write_wav(tmp_path / "r.wav", y, rate=44100)
    flac = write_lossless(tmp_path / "r.flac", y, "flac", 16, rate=44100)
    np.testing.assert_array_equal(read_signal(flac, 22050), read_signal(wav, 22050))


@pytest.mark.parametrize("container, suffix", [("AU", ".au"), ("AIFF", ".aiff")])
@pytest.mark.parametrize("subtype", ["ULAW", "ALAW"])
def test_companded_samples_are_decoded(tmp_path, container, suffix, subtype):
    import soundfile as sf

    x = signal()
    path = tmp_path / f"c{suffix}"
    sf.write(path, x, 22050, format=container, subtype=subtype)
    got = read_signal(path)
    assert got.shape == x.shape
    # G.711 keeps about 8 bits: each sample within a few steps of its source.
    assert np.max(np.abs(got - x)) < 0.02 and np.corrcoef(got, x)[0, 1] > 0.999


@pytest.mark.parametrize("fmt", list(LOSSY))
def test_lossy_formats_decode_close_to_the_source(tmp_path, fmt):
    rate = 48000 if fmt == "opus" else 22050  # Opus codes at 48 kHz or a few lower rates, not 22050 Hz
    x = tone(2.0, rate=rate)
    path = write_lossy(tmp_path / f"clip{LOSSY[fmt][0]}", x, fmt, rate)
    with open_audio(path) as source:
        assert (source.sample_rate, source.frames) == (rate, len(x))  # encoder delay and padding removed
        got = source.read()
    assert got.shape == x.shape and np.corrcoef(got, x)[0, 1] > 0.99
    mean, cov = analyse_track(path)
    ref_mean, ref_cov = analyse_track(write_wav(tmp_path / "ref.wav", x, rate=rate))
    assert np.abs(mean - ref_mean).max() < 0.1 * np.abs(ref_mean).max()
    assert np.abs(cov - ref_cov).max() < 0.1 * np.abs(ref_cov).max()


def _with_opus_input_rate(path, rate: int) -> None:
    """Rewrite the input rate an Opus file's header records (its first page's checksum made anew)."""
    from knn_genre.audio.ogg import ogg_crc

    raw = bytearray(path.read_bytes())
    at = raw.index(b"OpusHead") + 12
    raw[at : at + 4] = struct.pack("<I", rate)
    length = 27 + raw[26] + sum(raw[27 : 27 + raw[26]])
    page = bytearray(raw[:length])
    page[22:26] = b"\0\0\0\0"
    raw[22:26] = struct.pack("<I", ogg_crc(bytes(page)))
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("coded, recorded, decoded", [
    (8000, 8000, 8000), (16000, 16000, 16000), (24000, 24000, 24000),
    (24000, 22050, 24000),  # ffmpeg codes a 22050 Hz source at 24 kHz; other encoders record the source's rate
    (48000, 44100, 48000),  # opusenc of a CD-rate file
])
def test_opus_decodes_at_the_rate_its_header_gives(tmp_path, coded, recorded, decoded):
    import soundfile as sf

    x = tone(2.0, rate=coded)
    path = write_lossy(tmp_path / "clip.opus", x, "opus", coded)
    if recorded != coded:
        _with_opus_input_rate(path, recorded)
    with open_audio(path) as source:
        # The frames in the decoded rate, though the stream counts them at 48 kHz.
        assert (source.sample_rate, source.frames) == (decoded, len(x))
        got = source.read()
    assert sf.info(str(path)).samplerate == decoded  # the decoder's own view
    assert got.shape == x.shape and np.corrcoef(got, x)[0, 1] > 0.99
    mean, _ = analyse_track(path)
    ref_mean, _ = analyse_track(write_wav(tmp_path / "ref.wav", x, rate=coded))
    assert np.abs(mean - ref_mean).max() < 0.1 * np.abs(ref_mean).max()


@pytest.mark.parametrize("fmt", ["mp3", "ogg", "opus", "flac"])
def test_windows_are_the_same_whatever_order_they_are_read_in(tmp_path, fmt):
    rate = 48000 if fmt == "opus" else 22050
    x = tone(4.0, rate=rate, seed=3)
    if fmt == "flac":
        path = write_lossless(tmp_path / "w.flac", x, "flac", 16)
    else:
        path = write_lossy(tmp_path / f"w{LOSSY[fmt][0]}", x, fmt, rate)
    with open_audio(path) as source:
        whole = source.read()
        n = source.frames
    assert n == len(x) and np.corrcoef(whole, x)[0, 1] > 0.99
    spans = [(a, min(n, a + 30000)) for a in range(0, n, 9000)]
    order = np.random.default_rng(0).permutation(len(spans))
    with open_audio(path) as source:
        for i in [*range(len(spans)), *order]:  # forwards (overlapping), then shuffled
            a, b = spans[i]
            np.testing.assert_array_equal(source.read(a, b), whole[a:b], err_msg=f"{fmt} [{a}, {b})")
    for a, b in spans[::3]:  # each window from a freshly opened file
        with open_audio(path) as source:
            np.testing.assert_array_equal(source.read(a, b), whole[a:b])


@pytest.mark.parametrize("fmt", ["flac", "mp3"])
def test_predict_memory_stays_flat_for_long_compressed_files(tmp_path, fmt):
    from knn_genre.classifiers.model import train_on_featureset
    from knn_genre.pipeline.apply import predict_file
    from knn_genre.pipeline.build import build_featureset
    from knn_genre.pipeline.discover import discover

    from knn_genre.audio.synth import write_collection

    music = tmp_path / "music"
    write_collection(music, genres=("bass", "organ"), n_per_genre=3, seconds=1.0)
    features = build_featureset(music, discover(music), n_jobs=1)[0]
    model = train_on_featureset(features, "knn", k=1)
    rate = 44100
    clip = np.stack([synthesize("bass", 0, seconds=1.0, sample_rate=rate)] * 2, axis=1)
    peaks = []
    for repeats in (4, 32):
        long = np.tile(clip, (repeats, 1))
        path = write_lossless(tmp_path / f"long{repeats}.flac", long, "flac", 16, rate) if fmt == "flac" else write_lossy(tmp_path / f"long{repeats}.mp3", long, "mp3", rate)
        del long
        tracemalloc.start()
        prediction = predict_file(model, path, window_seconds=1.0, hop_seconds=1.0)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert prediction.genre == "bass"
    # 8x longer input, about the same peak: one window (and one block) in memory.
    assert peaks[1] < 1.5 * peaks[0]


# -- bad files ---------------------------------------------------------------


def _good(tmp_path, fmt):
    x = tone(3.0)
    if fmt in LOSSY:
        return write_lossy(tmp_path / f"good{LOSSY[fmt][0]}", tone(3.0, rate=48000) if fmt == "opus" else x, fmt, 48000 if fmt == "opus" else 22050)
    return write_lossless(tmp_path / f"good{LOSSLESS[fmt][0]}", x, fmt, 16)


def _cut(raw, fraction=0.5):
    return raw[: int(len(raw) * fraction)]


def _overwrite(raw, fill):
    at = len(raw) // 3
    return raw[:at] + fill * (2000 // len(fill)) + raw[at + 2000 :]


def _good_mp3_bytes():
    import io

    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, tone(0.5), 22050, format="MP3")
    return buffer.getvalue()


NOISE = bytes(np.random.default_rng(0).integers(0, 256, 2000, dtype=np.uint8))


def _ogg_page_patched(raw, page, offset, value):
    """``raw`` with ``value`` at ``offset`` of Ogg page ``page`` (-1: the last), its checksum made right again."""
    from knn_genre.audio.ogg import ogg_crc

    starts = [i for i in range(len(raw)) if raw.startswith(b"OggS", i)]
    start = starts[page]
    end = starts[page + 1] if page != -1 and page + 1 < len(starts) else len(raw)
    body = bytearray(raw[start:end])
    body[offset : offset + len(value)] = value
    body[22:26] = bytes(4)
    body[22:26] = struct.pack("<I", ogg_crc(bytes(body)))
    return raw[:start] + bytes(body) + raw[end:]


def _ogg_first_packet_patched(raw, magic, offset, value):
    """The first page's packet (which begins with ``magic``) with ``value`` at its ``offset``."""
    return _ogg_page_patched(raw, 0, raw.index(magic) + offset, value)


def _flac_total(raw, total):
    """A FLAC file whose STREAMINFO declares ``total`` samples (36 bits at file bytes 21.5-26)."""
    (packed,) = struct.unpack(">Q", raw[18:26])
    return raw[:18] + struct.pack(">Q", packed & ~((1 << 36) - 1) | total) + raw[26:]


def _flac_frames(raw):
    (packed,) = struct.unpack(">Q", raw[18:26])
    return packed & ((1 << 36) - 1)


def _xing_count(raw, count):
    at = raw.index(b"Xing") + 8
    return raw[:at] + struct.pack(">I", count) + raw[at + 4 :]

BAD = [
    # (format of the good file, damage, name, expected reason)
    ("flac", _cut, "cut.flac", r"damaged or truncated FLAC data between [\d.]+ and [\d.]+ s: flac decoder lost sync"),
    ("flac", lambda r: _overwrite(r, NOISE), "noise.flac", r"damaged or truncated FLAC data between"),
    ("flac", lambda r: _overwrite(r, b"\0"), "zeros.flac", r"damaged or truncated FLAC data between"),
    ("flac", lambda r: r[:200], "header.flac", r"damaged or truncated FLAC data|no audio frames"),
    ("flac", lambda r: r[:30], "meta.flac", r"truncated: metadata block 0 declares 34 bytes but only 22 follow"),
    ("mp3", _cut, "cut.mp3", r"truncated: the MP3 header declares \d+ frames \(3\.\d s\) but the file holds \d+ \(1\.\d s\)"),
    ("mp3", lambda r: _overwrite(r, NOISE), "noise.mp3", r"damaged MP3 data at byte \d+ \([\d.]+ s\): no frame header"),
    ("mp3", lambda r: b"ID3\x03\x00\x00\x00\x00\x00\x14" + b"\0" * 20, "tag-only.mp3", r"no MPEG audio frames after its 30-byte ID3 tag"),
    ("mp3", lambda r: b"ID3\x03\x00\x00\x00\x00\x00\x14" + b"\0" * 20 + b"\0" * 4000, "silent-tag.mp3", r"no MPEG audio frames after its 30-byte ID3 tag"),
    # Cut inside the first frame, in its Xing header (the frame-count field missing).
    ("mp3", lambda r: r[: r.index(b"Xing") + 6], "cut-in-xing.mp3", r"truncated: the file ends inside its first MPEG audio frame"),
    ("mp3", lambda r: b"ID3\x03\x00\x00\x00\x10\x00\x00" + b"\0" * 20, "short-tag.mp3", r"truncated: the ID3 tag declares 262154 bytes but the file holds 30"),
    ("ogg", _cut, "cut.ogg", r"truncated: Ogg page \d+ at byte \d+ needs \d+ bytes but only \d+ remain"),
    ("ogg", lambda r: _overwrite(r, NOISE), "noise.ogg", r"damaged Ogg page \d+ at byte \d+: its checksum does not match"),
    ("ogg", lambda r: r[: r.rindex(b"OggS")], "no-last-page.ogg", r"truncated: the Ogg stream has no last page"),
    ("opus", _cut, "cut.opus", r"truncated: Ogg page"),
    ("au", _cut, "cut.au", r"truncated: the header declares 66150 frames \(132300 bytes\) but the file holds 330\d\d "),
    ("au", lambda r: r[:20], "stub.au", r"truncated: 20 bytes, too short for an .au header"),
    ("aiff", _cut, "cut.aiff", r"truncated: the header declares 66150 frames \(132300 bytes\) but the file holds 330\d\d "),
    ("aiff", lambda r: r[:12], "form-only.aiff", r"no COMM chunk"),
    ("wav", lambda r: r, "wav-named.flac", r"not a FLAC file: starts with 'RIFF', a WAV file"),
    ("flac", lambda r: r, "flac-named.mp3", r"not an MP3 file: starts with 'fLaC', a FLAC file"),
    ("mp3", lambda r: r, "mp3-named.flac", r"not a FLAC file: starts with '\\xff\\x\w\w.*', an MP3 file"),
    ("flac", lambda r: b"ID3\x03\x00\x00\x00\x00\x00\x00" + _good_mp3_bytes(), "id3-mp3-named.flac", r"not a FLAC file: after its ID3 tag, the file starts with .*, an MP3 file"),
    ("mp3", lambda r: r, "mp3-named.ogg", r"not an Ogg file: starts with '\\xff\\x\w\w.*', an MP3 file"),
    ("ogg", lambda r: r, "ogg-named.au", r"not an .au file: starts with 'OggS', an Ogg Vorbis file"),
    ("au", lambda r: r, "au-named.aiff", r"not an AIFF file: starts with '.snd', a Sun/NeXT .au file"),
    ("wav", lambda r: b"hello, this is not music\n" * 20, "notes.flac", r"not a FLAC file: starts with 'hell', a text file"),
    ("wav", lambda r: b"<html><body>404</body></html>", "page.mp3", r"not an MP3 file: starts with '<htm', a text/HTML file"),
    ("wav", lambda r: b"", "empty.flac", r"^.*: empty file \(0 bytes\)$"),
    ("wav", lambda r: b"", "empty.mp3", r"^.*: empty file \(0 bytes\)$"),
    ("wav", lambda r: b"", "empty.ogg", r"^.*: empty file \(0 bytes\)$"),
    ("wav", lambda r: b"", "empty.au", r"^.*: empty file \(0 bytes\)$"),
    ("wav", lambda r: b"\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00" + b"\0" * 100, "song.m4a", r"MP4/M4A audio \(AAC or Apple Lossless\) cannot be decoded here"),
    ("wav", lambda r: b"\x30\x26\xb2\x75\x8e\x66\xcf\x11" + b"\0" * 100, "song.wma", r"Windows Media Audio cannot be decoded here"),
    ("mp3", lambda r: r, "really-mp3.m4a", r"named \.m4a but its content is an MP3 file: rename it to \.mp3"),
    ("wav", lambda r: b"\x00\x00\x00\x20ftypM4A " + b"\0" * 100, "m4a-named.mp3", r"not an MP3 file: starts with .*, an MP4/M4A file \(AAC or ALAC\)"),
    ("wav", lambda r: b"\xff\xf1\x50\x80" + b"\0" * 100, "adts-named.mp3", r"not an MP3 file: .*a raw AAC \(ADTS\) file"),
    # A length far beyond what the bytes can hold: refused at once, not planned for (it was, by
    # the window list of a segmented build, until memory ran out).
    ("opus", lambda r: _ogg_page_patched(r, -1, 6, struct.pack("<q", 2**62)), "granule.opus",
     r"damaged: it declares \d+ frames \([\d.e+]+ hours\), more than a file of \d+ bytes can hold"),
    ("ogg", lambda r: _ogg_page_patched(r, -1, 6, struct.pack("<q", 2**40)), "granule.ogg", r"more than a file of \d+ bytes can hold"),
    ("flac", lambda r: _flac_total(r, (1 << 36) - 1), "total.flac", r"damaged: it declares 68719476735 frames .* more than a file of"),
    ("flac", lambda r: _flac_total(r, 0), "unknown-length.flac", r"its STREAMINFO gives no length \(a stream written to a pipe\?\)"),
    ("flac", lambda r: _flac_total(r, _flac_frames(r) + 1), "one-more.flac", r"the stream ends before the length its header declares$"),
    # The decoder stops at a Xing count: one far below the frames in the file would drop most of the song.
    ("mp3", lambda r: _xing_count(r, 10), "xing-short.mp3", r"damaged Xing/VBRI header: it declares 10 frames \(0\.3 s\) but the file holds \d+ \(3\.\d s\)"),
    ("mp3", lambda r: _xing_count(r, 1), "xing-one.mp3", r"damaged Xing/VBRI header: it declares 1 frames"),
    ("ogg", lambda r: _ogg_first_packet_patched(r, b"\x01vorbis", 11, b"\xff"), "channels.ogg", r"damaged header: 255 channels \(Ogg Vorbis music has 1 to 8\)"),
    ("opus", lambda r: _ogg_first_packet_patched(r, b"OpusHead", 12, b"\xff" * 4), "rate.opus", r"implausible sample rate 4294967295 Hz"),
    ("wav", lambda r: "a note about the song, not the song\n".encode("utf-16"), "note.mp3", r"not an MP3 file: starts with .*, a UTF-16 text file"),
    ("aiff", lambda r: r[:8] + b"XIFF" + r[12:], "form.aiff", r"not an AIFF file: starts with 'FORM', an IFF file whose form type is 'XIFF'"),
]


@pytest.mark.parametrize("fmt, damage, name, reason", BAD, ids=[b[2] for b in BAD])
def test_bad_files_give_a_one_line_reason_and_print_nothing(tmp_path, capfd, fmt, damage, name, reason):
    raw = _good(tmp_path, fmt).read_bytes()
    path = tmp_path / name
    path.write_bytes(damage(raw))
    with pytest.raises(AudioError, match=reason) as info:
        read_audio(path)
    message = str(info.value)
    assert info.value.path == str(path) and message.startswith(f"{path}: ") and "\n" not in message
    assert "libsndfile" not in message.lower() and "Traceback" not in message
    out, err = capfd.readouterr()
    assert out == "" and err == ""  # the decoders' own notes (mpg123's) never reach the terminal


def test_a_folder_or_a_missing_file_is_named_as_such_whatever_its_suffix(tmp_path):
    (tmp_path / "library").mkdir()
    (tmp_path / "album.flac").mkdir()
    (tmp_path / "notes.txt").write_text("not music")
    cases = {
        "library": "is a directory, not an audio file",
        "album.flac": "is a directory, not a FLAC file",
        "missing": "no such file",
        "missing.m4a": "no such file",
        "notes.txt": "unsupported file type '.txt'; supported: .wav",
    }
    for name, reason in cases.items():
        with pytest.raises(AudioError) as info:
            read_audio(tmp_path / name)
        assert str(info.value).startswith(f"{tmp_path / name}: {reason}"), name


def _patched(raw: bytes, offset: int, value: bytes) -> bytes:
    return raw[:offset] + value + raw[offset + len(value) :]


def test_implausible_rates_and_headers_are_refused_before_decoding(tmp_path):
    au = write_marsyas_au(tmp_path / "a.au", tone(0.5)).read_bytes()
    flac = write_lossless(tmp_path / "a.flac", tone(0.5), "flac", 16).read_bytes()
    aiff = write_lossless(tmp_path / "a.aiff", tone(0.5), "aiff", 16).read_bytes()
    assert flac[5:8] == b"\x00\x00\x22" and aiff[12:16] == b"COMM"
    cases = {
        "rate.au": (_patched(au, 16, struct.pack(">I", 999)), "implausible sample rate 999 Hz"),
        "zero.au": (_patched(au, 16, struct.pack(">I", 0)), "sample rate 0 Hz"),
        "channels.au": (_patched(au, 20, struct.pack(">I", 0)), "0 channels"),
        "encoding.au": (_patched(au, 12, struct.pack(">I", 24)), r"unsupported .au encoding 24 \(G.722 ADPCM\)"),
        "offset.au": (_patched(au, 4, struct.pack(">I", 10**9)), "the audio data starts at byte 1000000000"),
        # STREAMINFO: 20 bits of rate at byte 18 of the file.
        "rate.flac": (_patched(flac, 18, bytes([0x00, 0x3E, 0x70 | flac[20] & 0x0F])), "implausible sample rate 999 Hz"),
        "rate.aiff": (_patched(aiff, 28, bytes.fromhex("40088000000000000000")), "implausible sample rate 512 Hz"),
        "compression.aiff": (
            _patched(aiff, 8, b"AIFC"),
            r"damaged header: AIFF-C COMM chunk without a compression type",
        ),
    }
    for name, (content, reason) in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(AudioError, match=reason):
            open_audio(tmp_path / name)


def test_reading_wav_never_imports_the_decoder_library(tmp_path):
    path = write_wav(tmp_path / "a.wav", tone(0.5))
    code = (
        "import sys; from knn_genre.audio import read_audio; "
        f"read_audio({str(path)!r}); print('soundfile' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_discovery_counts_unreadable_formats_as_audio(tmp_path):
    from knn_genre.pipeline.discover import discover

    for name in ("a.flac", "b.MP3", "c.m4a", "d.wma", "e.au", "f.opus", "g.aiff"):
        (tmp_path / "rock" / name).parent.mkdir(exist_ok=True)
        (tmp_path / "rock" / name).write_bytes(b"")
    (tmp_path / "rock" / "cover.jpg").write_bytes(b"\xff\xd8\xff")
    found = discover(tmp_path)
    assert [t.path for t in found.tracks] == [f"rock/{n}" for n in ("a.flac", "b.MP3", "c.m4a", "d.wma", "e.au", "f.opus", "g.aiff")]
    assert found.ignored == ("rock/cover.jpg",)


@pytest.mark.parametrize("fmt, suffix", [("WAV", ".wav"), ("AIFF", ".aiff"), ("AU", ".au"), ("FLAC", ".flac"), ("OGG", ".ogg"), ("MP3", ".mp3")])
def test_a_file_cut_in_its_first_bytes_is_called_truncated(tmp_path, fmt, suffix):
    import soundfile as sf

    full = tmp_path / f"full{suffix}"
    sf.write(full, signal(), 22050, format=fmt)
    raw = full.read_bytes()
    # Shorter than the magic for every format; for AIFF, also cut before its form type (byte 12).
    for n in (1, 3, *((4, 8, 11) if fmt == "AIFF" else ())):
        cut = tmp_path / f"cut{n}{suffix}"
        cut.write_bytes(raw[:n])
        with pytest.raises(AudioError, match=rf"^{cut}: truncated: {n} bytes?, too short for"):
            read_audio(cut)


@pytest.mark.parametrize("content, named", [
    (b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        " + b"\0" * 4000, "a macOS AppleDouble file"),
    (b"riff\x2e\x91\xcf\x11\xa5\xd6\x28\xdb\x04\xc1\x00\x00" + b"\0" * 100, "a Wave64 file"),
])
def test_files_that_often_carry_a_wav_name_are_named(tmp_path, content, named):
    path = tmp_path / "._clip.wav"
    path.write_bytes(content)
    with pytest.raises(AudioError, match=f"not a wav file: starts with .*, {named}"):
        read_audio(path)


@pytest.mark.parametrize("fmt", ["ogg", "opus"])
def test_bytes_after_the_last_ogg_page_are_ignored_as_after_other_formats(tmp_path, fmt):
    good = _good(tmp_path, fmt)
    tagged = tmp_path / f"tagged{good.suffix}"
    tagged.write_bytes(good.read_bytes() + b"TAG" + b"\0" * 125)  # an ID3v1 tag some taggers append
    np.testing.assert_array_equal(read_signal(tagged), read_signal(good))
    # A page after the last one is still a second stream, which is refused.
    chained = tmp_path / f"chained{good.suffix}"
    chained.write_bytes(good.read_bytes() + good.read_bytes())
    with pytest.raises(AudioError):
        read_audio(chained)


def test_an_aiff_written_to_a_pipe_reads_as_the_same_samples(tmp_path):
    # A streaming writer (ffmpeg -f aiff -) cannot go back to fill in the FORM size, COMM's
    # frame count and SSND's size: they stay 0, and the samples are what the file holds.
    x = signal()
    whole = write_lossless(tmp_path / "whole.aiff", x, "aiff", 16).read_bytes()
    comm, ssnd = whole.index(b"COMM"), whole.index(b"SSND")
    piped = bytearray(whole)
    piped[4:8] = bytes(4)
    piped[comm + 10 : comm + 14] = bytes(4)  # numSampleFrames
    piped[ssnd + 4 : ssnd + 8] = bytes(4)
    (tmp_path / "piped.aiff").write_bytes(bytes(piped))
    np.testing.assert_array_equal(read_signal(tmp_path / "piped.aiff"), read_signal(tmp_path / "whole.aiff"))
    # A real empty AIFF (sizes set, no frames) is still no audio.
    empty = bytearray(whole[: ssnd + 16])
    empty[comm + 10 : comm + 14] = bytes(4)
    empty[ssnd + 4 : ssnd + 8] = struct.pack(">I", 8)
    (tmp_path / "empty.aiff").write_bytes(bytes(empty))
    with pytest.raises(AudioError, match="no audio samples"):
        read_audio(tmp_path / "empty.aiff")


def test_other_wav_suffixes_read_as_wav_and_other_containers_are_named(tmp_path):
    import soundfile as sf

    from knn_genre.pipeline.discover import discover

    wav = write_wav(tmp_path / "rock" / "a.wav", tone(0.5))
    for suffix in (".wave", ".bwf", ".rf64"):
        (tmp_path / "rock" / f"a{suffix}").write_bytes(wav.read_bytes())
        np.testing.assert_array_equal(read_signal(tmp_path / "rock" / f"a{suffix}"), read_signal(wav))
    sf.write(tmp_path / "rock" / "b.caf", tone(0.5), 22050, format="CAF")
    sf.write(tmp_path / "rock" / "b.w64", tone(0.5), 22050, format="W64")
    for name, reason in (("b.caf", "Core Audio Format cannot be decoded here"), ("b.w64", "Sony Wave64 cannot be decoded here")):
        with pytest.raises(AudioError, match=reason):
            read_audio(tmp_path / "rock" / name)
    found = discover(tmp_path)  # tracks, skipped with their reason, not "non-audio"
    assert {t.path for t in found.tracks} >= {"rock/b.caf", "rock/b.w64", "rock/a.bwf"} and found.ignored == ()


def _cbr_mp3_frames(x, level):
    """The audio frames of a constant-bitrate MP3 of ``x`` (22050 Hz), without an Info frame."""
    import io

    import soundfile as sf

    from knn_genre.audio.mpeg import parse_header

    buffer = io.BytesIO()
    sf.write(buffer, x, 22050, format="MP3", bitrate_mode="CONSTANT", compression_level=level)
    raw = buffer.getvalue()
    first = parse_header(raw[:4])
    # LAME's length header, where its first frame is large enough to hold one: dropped.
    return raw[first.length :] if raw[: first.length].find(b"Info") > 0 else raw


def _id3_padding(n):
    """An ID3v2.3 tag of ``n`` bytes of padding (a tagger's room for a cover picture)."""
    size = n - 10
    return b"ID3\x03\x00\x00" + bytes([(size >> 21) & 0x7F, (size >> 14) & 0x7F, (size >> 7) & 0x7F, size & 0x7F]) + bytes(size)


def test_a_constant_bitrate_mp3_without_a_length_header_reads_whole_whatever_its_tags(tmp_path):
    # Without a Xing/Info count the decoder estimates the length from the file's size, tags
    # included: too long an estimate is harmless, the frames counted are what is read.
    frames = _cbr_mp3_frames(tone(3.0), 0.5)
    assert b"Info" not in frames[:2000] and b"Xing" not in frames[:2000]
    plain = tmp_path / "plain.mp3"
    plain.write_bytes(frames)
    reference = read_signal(plain)
    for name, content in (("tagged.mp3", _id3_padding(200_000) + frames), ("padded.mp3", frames + bytes(5000))):
        (tmp_path / name).write_bytes(content)
        np.testing.assert_array_equal(read_signal(tmp_path / name), reference, err_msg=name)
    # Zero bytes after the last frame made the decoder fail in its last block: decoded again, exactly.
    with open_audio(tmp_path / "padded.mp3") as source:
        pieces = np.concatenate([source.read(0, 30000), source.read(30000, None)])
    np.testing.assert_array_equal(pieces, reference)


def test_an_mp3_the_decoder_would_read_short_is_refused(tmp_path):
    from knn_genre.audio.mpeg import parse_header

    # A variable bitrate without a Xing count: 160 kbit/s first, then 24 kbit/s. The decoder's
    # estimate from the first frame's bitrate is far below the frames in the file.
    vbr = _cbr_mp3_frames(tone(0.5), 0.0) + _cbr_mp3_frames(tone(3.0, seed=1), 0.9)
    (tmp_path / "vbr.mp3").write_bytes(vbr)
    with pytest.raises(AudioError, match=r"variable-bitrate MP3 without a Xing or VBRI header: the decoder would read only [\d.]+ s of its 3\.\d s"):
        read_audio(tmp_path / "vbr.mp3")
    # The same stream behind a VBRI header (Fraunhofer's), which the decoder does not read.
    head = parse_header(vbr[:4])
    count = 0
    pos = 0
    while pos + 4 <= len(vbr) and (h := parse_header(vbr[pos : pos + 4])) is not None:
        count, pos = count + 1, pos + h.length
    vbri = bytearray(vbr[: head.length])
    vbri[4:] = bytes(len(vbri) - 4)
    vbri[36:40] = b"VBRI"
    vbri[36 + 14 : 36 + 18] = struct.pack(">I", count)
    (tmp_path / "vbri.mp3").write_bytes(bytes(vbri) + vbr)
    with pytest.raises(AudioError, match=r"an MP3 with a VBRI header, which the decoder does not read: the decoder would read only"):
        read_audio(tmp_path / "vbri.mp3")


def test_a_chained_ogg_and_an_opus_of_unspecified_rate_are_refused_not_read_in_part(tmp_path):
    first, second = _good(tmp_path, "ogg").read_bytes(), write_lossy(tmp_path / "b.ogg", tone(2.0, seed=3), "ogg", 22050).read_bytes()
    serial = struct.unpack("<I", second[14:18])[0]
    if serial == struct.unpack("<I", first[14:18])[0]:  # a chain's streams have serials of their own
        starts = [i for i in range(len(second)) if second.startswith(b"OggS", i)]
        for page in range(len(starts)):
            second = _ogg_page_patched(second, page, 14, struct.pack("<I", serial ^ 1))
    (tmp_path / "chain.ogg").write_bytes(first + second)
    with pytest.raises(AudioError, match=r"unsupported chained Ogg file: a second stream begins at byte \d+, after the first one ends"):
        read_audio(tmp_path / "chain.ogg")
    opus = _good(tmp_path, "opus").read_bytes()
    (tmp_path / "rate0.opus").write_bytes(_ogg_first_packet_patched(opus, b"OpusHead", 12, bytes(4)))
    with pytest.raises(AudioError, match=r"input sample rate is 0 \(unspecified\), which the decoder reads as 8 kHz"):
        read_audio(tmp_path / "rate0.opus")


def _id3v24_with_footer(payload=b"TIT2\x00\x00\x00\x05\x00\x00\x03song"):
    size = len(payload)
    syncsafe = bytes([(size >> 21) & 0x7F, (size >> 14) & 0x7F, (size >> 7) & 0x7F, size & 0x7F])
    return b"ID3\x04\x00\x10" + syncsafe + payload + b"3DI\x04\x00\x10" + syncsafe


@pytest.mark.parametrize("prefix, name", [
    (bytes(1000), "zero padding before the first frame"),
    (_id3v24_with_footer(), "an ID3v2.4 tag with a footer"),
    (_id3_padding(3000) + bytes(2048), "zeros after the ID3 tag"),
])
def test_what_taggers_leave_before_the_frames_reads_as_the_same_song(tmp_path, prefix, name):
    # The decoder is given the file from its first frame on: libsndfile, opened on a descriptor,
    # recognised none of these, though each holds the same frames.
    plain = _good(tmp_path, "mp3")
    tagged = tmp_path / "tagged.mp3"
    tagged.write_bytes(prefix + plain.read_bytes())
    np.testing.assert_array_equal(read_signal(tagged), read_signal(plain), err_msg=name)


def test_a_flac_behind_an_id3_tag_with_a_footer_reads_as_the_same_samples(tmp_path):
    plain = _good(tmp_path, "flac")
    tagged = tmp_path / "tagged.flac"
    tagged.write_bytes(_id3v24_with_footer() + plain.read_bytes())
    np.testing.assert_array_equal(read_signal(tagged), read_signal(plain))


def test_zeros_and_then_no_frames_are_not_an_mp3(tmp_path):
    path = tmp_path / "zeros.mp3"
    path.write_bytes(bytes(1000) + b"hello, not music at all\n" * 40)
    with pytest.raises(AudioError, match="not an MP3 file: starts with '.*', not a known audio format"):
        read_audio(path)
    # Zeros, then one frame header that no second frame confirms.
    path.write_bytes(bytes(1000) + bytes.fromhex("fffb9064") + b"hello, not music at all\n" * 40)
    with pytest.raises(AudioError, match="not an MP3 file: 1000 zero bytes, then no MPEG audio frames"):
        read_audio(path)
