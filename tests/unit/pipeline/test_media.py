"""Content sniffing on real encoder output and hand-built headers; WAV structure checks."""

from __future__ import annotations

import hashlib
import struct
import wave
from pathlib import Path

import av
import pytest
from av.audio.resampler import AudioResampler
from av.audio.stream import AudioStream

from pipeline.errors import InvalidAudio
from pipeline.media import (
    FLAC,
    M4A,
    MP3,
    OGG,
    SNIFF_BYTES,
    WAV,
    WEBM,
    AudioFormat,
    head_channels,
    sniff,
    validate_audio,
    validate_wav,
)

SAMPLES = Path(__file__).resolve().parents[3] / "samples"
STEREO = SAMPLES / "stereo.wav"
MONO = SAMPLES / "mono.wav"


def _head(path: Path) -> bytes:
    with path.open("rb") as f:
        return f.read(SNIFF_BYTES)


def _short_wav(dest: Path, *, seconds: float = 1.0) -> Path:
    """The first `seconds` of the mono sample, so encoders run in milliseconds."""
    with wave.open(str(MONO), "rb") as src, wave.open(str(dest), "wb") as out:
        out.setparams(src.getparams())
        out.writeframes(src.readframes(int(src.getframerate() * seconds)))
    return dest


def _encode(src: Path, dest: Path, *, container: str, codec: str, rate: int) -> Path:
    """Re-encode with PyAV's bundled FFmpeg, giving the exact headers real encoders write."""
    with av.open(str(src)) as inp, av.open(str(dest), "w", format=container) as out:
        stream = out.add_stream(codec, rate=rate, layout="mono")
        assert isinstance(stream, AudioStream)
        formats = stream.codec_context.codec.audio_formats
        assert formats
        sample_format = formats[0].name
        resampler = AudioResampler(format=sample_format, layout="mono", rate=rate)
        for frame in inp.decode(audio=0):
            for converted in resampler.resample(frame):
                out.mux(stream.encode(converted))
        for converted in resampler.resample(None):
            out.mux(stream.encode(converted))
        out.mux(stream.encode(None))
    return dest


ENCODINGS = [
    ("flac", "flac", 16000, FLAC),
    ("ogg", "libopus", 48000, OGG),
    ("ogg", "flac", 16000, OGG),
    ("mp3", "libmp3lame", 16000, MP3),
    ("mp3", "libmp3lame", 44100, MP3),
    ("ipod", "aac", 16000, M4A),
    ("mp4", "aac", 16000, M4A),
    ("3gp", "aac", 16000, M4A),
    ("webm", "libopus", 48000, WEBM),
]


@pytest.mark.parametrize(("container", "codec", "rate", "expected"), ENCODINGS)
def test_sniff_recognises_encoder_output(
    tmp_path: Path, container: str, codec: str, rate: int, expected: AudioFormat
) -> None:
    src = _short_wav(tmp_path / "clip.wav")
    # A misleading extension proves the name is never consulted.
    encoded = _encode(src, tmp_path / "upload.bin", container=container, codec=codec, rate=rate)
    assert sniff(_head(encoded)) == expected


@pytest.mark.parametrize("sample", [STEREO, MONO])
def test_sniff_recognises_the_wav_samples(sample: Path) -> None:
    assert sniff(_head(sample)) == WAV


def test_sniff_recognises_mp3_without_id3_tag(tmp_path: Path) -> None:
    mp3 = _encode(
        _short_wav(tmp_path / "clip.wav"),
        tmp_path / "a.mp3",
        container="mp3",
        codec="libmp3lame",
        rate=16000,
    )
    data = mp3.read_bytes()
    assert data[:3] == b"ID3"
    tag_size = 10 + sum(b << (7 * (3 - i)) for i, b in enumerate(data[6:10]))
    bare = data[tag_size:]
    assert bare[0] == 0xFF
    assert sniff(bare[:SNIFF_BYTES]) == MP3


@pytest.mark.parametrize(
    "frame_header",
    [
        "FF FB 90 64",  # MPEG-1 layer III, 128 kbit/s, 44.1 kHz
        "FF FA 90 64",  # same, CRC-protected
        "FF F3 48 C4",  # MPEG-2 layer III, 64 kbit/s, 16 kHz
        "FF F2 48 C4",  # same, CRC-protected
        "FF E3 48 C4",  # MPEG-2.5 layer III, 8 kHz family
        "FF FD 90 04",  # MPEG-1 layer II
    ],
)
def test_sniff_accepts_valid_mpeg_frame_headers(frame_header: str) -> None:
    head = bytes.fromhex(frame_header) + bytes(SNIFF_BYTES - 4)
    assert sniff(head) == MP3


@pytest.mark.parametrize(
    ("frame_header", "why"),
    [
        ("FF EB 90 64", "reserved MPEG version 01"),
        ("FF F9 50 80", "layer 00: ADTS AAC, not MPEG audio"),
        ("FF FB F0 64", "bitrate index 1111 is invalid"),
        ("FF FB 00 64", "free-format bitrate refused to avoid false positives"),
        ("FF FB 9C 64", "sample rate index 11 is reserved"),
        ("FF FB 90 66", "emphasis 10 is reserved"),
        ("FF D8 FF E0", "a JPEG"),
        ("FF FF FF FF", "all ones"),
    ],
)
def test_sniff_refuses_invalid_mpeg_frame_headers(frame_header: str, why: str) -> None:
    head = bytes.fromhex(frame_header) + bytes(SNIFF_BYTES - 4)
    assert sniff(head) is None, why


def _ftyp(major: bytes, *compatible: bytes) -> bytes:
    body = b"ftyp" + major + b"\x00\x00\x02\x00" + b"".join(compatible)
    return (len(body) + 4).to_bytes(4, "big") + body + bytes(SNIFF_BYTES)


@pytest.mark.parametrize(
    ("box", "expected"),
    [
        (_ftyp(b"M4A ", b"M4A ", b"isom"), M4A),
        (_ftyp(b"M4B ", b"M4B "), M4A),
        (_ftyp(b"mp42", b"mp42", b"isom"), M4A),
        (_ftyp(b"mp41"), M4A),
        (_ftyp(b"dash", b"iso6"), M4A),
        (_ftyp(b"3gp5", b"3gp5"), M4A),
        (_ftyp(b"XXXX", b"M4A "), M4A),  # an audio brand among the compatible ones
        (_ftyp(b"heic", b"mif1", b"heic"), None),  # a HEIF photo is an ftyp box too
        (_ftyp(b"qt  ", b"qt  "), None),  # QuickTime movie
    ],
)
def test_sniff_mp4_brands(box: bytes, expected: AudioFormat | None) -> None:
    assert sniff(box[:SNIFF_BYTES]) == expected


@pytest.mark.parametrize(
    "head",
    [
        b"",
        b"\xff",
        b"ID3",
        b"ID3 tags are described in this text file, which is not audio at all.",
        b"Agent: Thank you for calling Acme Bank, my name is Sarah.\nCustomer: Hi.\n",
        b'{"external_id": "sample-transcript-001", "transcript": []}',
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(48),
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n" + bytes(16),
        b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(54),
        b"RIFF\x24\x00\x00\x00AVI LIST" + bytes(48),  # RIFF, but a video
        b"OggS\x01" + bytes(59),  # Ogg page with an unknown structure version
        hashlib.sha256(b"callintel").digest() * 2,
        bytes(SNIFF_BYTES),
    ],
)
def test_sniff_refuses_non_audio(head: bytes) -> None:
    assert sniff(head) is None


def test_sniff_needs_only_the_signature_bytes() -> None:
    assert sniff(b"fLaC") == FLAC
    assert sniff(b"\x1a\x45\xdf\xa3") == WEBM


# --- WAV structure -------------------------------------------------------------------------


def _fmt(*, channels: int = 1, rate: int = 16000, bits: int = 16) -> bytes:
    align = channels * bits // 8
    body = struct.pack("<HHIIHH", 1, channels, rate, rate * align, align, bits)
    return b"fmt " + struct.pack("<I", len(body)) + body


def _chunk(chunk_id: bytes, body: bytes, *, declared: int | None = None) -> bytes:
    size = len(body) if declared is None else declared
    return chunk_id + struct.pack("<I", size) + body + (b"\x00" if len(body) % 2 else b"")


def _riff(*chunks: bytes) -> bytes:
    payload = b"WAVE" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(payload)) + payload


def _write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "upload.wav"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("sample", [STEREO, MONO])
def test_validate_wav_accepts_the_samples(sample: Path) -> None:
    validate_wav(sample)
    validate_audio(sample, WAV)


def test_validate_wav_accepts_extra_chunks_with_odd_sizes(tmp_path: Path) -> None:
    info = _chunk(b"LIST", b"INFOISFT\x05\x00\x00\x00sox1\x00")  # 17 bytes, padded to 18
    data = _riff(info, _fmt(), _chunk(b"data", bytes(320)))
    validate_wav(_write(tmp_path, data))


@pytest.mark.parametrize("declared", [0, 0xFFFFFFFF])
def test_validate_wav_accepts_streaming_data_size(tmp_path: Path, declared: int) -> None:
    validate_wav(_write(tmp_path, _riff(_fmt(), _chunk(b"data", bytes(3200), declared=declared))))


def test_validate_wav_refuses_a_truncated_copy(tmp_path: Path) -> None:
    data = STEREO.read_bytes()
    with pytest.raises(InvalidAudio, match="truncated") as info:
        validate_wav(_write(tmp_path, data[: len(data) // 2]))
    assert info.value.code == "invalid_audio"


def test_validate_wav_refuses_a_header_only_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidAudio, match="truncated"):
        validate_wav(_write(tmp_path, STEREO.read_bytes()[:44]))


def test_validate_wav_refuses_a_header_only_streaming_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidAudio, match="no audio frames"):
        validate_wav(_write(tmp_path, _riff(_fmt(), _chunk(b"data", b"", declared=0xFFFFFFFF))))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "header"),
        (b"RIFF\x00\x00", "header"),
        (b"RIFX" + bytes(4) + b"WAVE" + bytes(32), "header"),
        (_riff(_fmt()), "no data chunk"),
        (_riff(_chunk(b"data", bytes(320))), "no fmt chunk"),
        (_riff(_chunk(b"fmt ", bytes(8)), _chunk(b"data", bytes(320))), "shorter than"),
        (_riff(_fmt(channels=0), _chunk(b"data", bytes(320))), "zero channels"),
        (_riff(_fmt(rate=0), _chunk(b"data", bytes(320))), "sample rate"),
        (_riff(_fmt(channels=2), _chunk(b"data", bytes(3))), "no audio frames"),
        (_riff(_chunk(b"LIST", bytes(8), declared=4096), _fmt()), "no data chunk"),
    ],
)
def test_validate_wav_refuses_malformed_files(tmp_path: Path, data: bytes, message: str) -> None:
    with pytest.raises(InvalidAudio, match=message):
        validate_wav(_write(tmp_path, data))


def test_validate_audio_leaves_compressed_formats_to_the_decoder(tmp_path: Path) -> None:
    flac = _encode(
        _short_wav(tmp_path / "clip.wav"),
        tmp_path / "a.flac",
        container="flac",
        codec="flac",
        rate=16000,
    )
    validate_audio(flac, FLAC)
    truncated = _write(tmp_path, STEREO.read_bytes()[:1000])
    validate_audio(truncated, MP3)  # the declared format decides; only WAV is parsed here
    with pytest.raises(InvalidAudio):
        validate_audio(truncated, WAV)


def test_head_channels_reads_the_wav_header_it_is_given() -> None:
    six = _riff(_fmt(channels=6), _chunk(b"data", bytes(1200)))
    assert head_channels(six[:SNIFF_BYTES]) == 6
    assert head_channels(_head(STEREO)) == 2
    assert head_channels(six[:22]) is None  # the fmt chunk is cut off before its channel count
    padded = _riff(_chunk(b"JUNK", bytes(100)), _fmt(channels=2), _chunk(b"data", bytes(4)))
    assert head_channels(padded[:SNIFF_BYTES]) is None  # beyond the head: unknown, not guessed
    assert head_channels(b"fLaC" + bytes(60)) is None
