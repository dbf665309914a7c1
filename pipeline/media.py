"""Recognising uploaded audio by its content, and checking WAV files before any model sees them.

Pure domain code (standard library only), so the API can call it on upload without vendor imports.
"""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from pipeline.errors import InvalidAudio, InvalidInput

SNIFF_BYTES = 64
WAV_HEADER_BYTES = 44  # the canonical RIFF + fmt + data headers; a few extra chunks change little
"""How many leading bytes `sniff` wants; fewer still work for formats with short signatures."""


@dataclass(frozen=True)
class AudioFormat:
    name: str
    ext: str
    content_type: str


WAV = AudioFormat("wav", "wav", "audio/wav")
FLAC = AudioFormat("flac", "flac", "audio/flac")
OGG = AudioFormat("ogg", "ogg", "audio/ogg")
M4A = AudioFormat("m4a", "m4a", "audio/mp4")
MP3 = AudioFormat("mp3", "mp3", "audio/mpeg")
WEBM = AudioFormat("webm", "webm", "audio/webm")

_EBML = b"\x1a\x45\xdf\xa3"
_MP4_AUDIO_BRANDS = frozenset({b"M4A ", b"M4B ", b"mp42", b"isom", b"mp41", b"dash"})
# RIFF/data sizes that streaming writers put in a header when the length is not known yet.
_UNKNOWN_SIZES = frozenset({0, 0xFFFFFFFF})


def _is_mp4_audio(head: bytes) -> bool:
    """An ISO-BMFF `ftyp` box whose major or a compatible brand is one audio players accept."""
    if len(head) < 12 or head[4:8] != b"ftyp":
        return False
    box_size = int.from_bytes(head[:4], "big")
    if box_size < 16 or box_size % 4:
        return False
    brands = [head[8:12]]
    # Compatible brands follow the minor version (bytes 12-15), up to the end of the box.
    end = min(box_size, len(head))
    brands += [head[i : i + 4] for i in range(16, end - 3, 4)]
    return any(b in _MP4_AUDIO_BRANDS or b.startswith(b"3gp") for b in brands)


def _is_id3(head: bytes) -> bool:
    """An ID3v2 tag header: 'ID3', major version 2-4, and a size made of four 7-bit bytes."""
    if len(head) < 10 or head[:3] != b"ID3":
        return False
    return head[3] in (2, 3, 4) and head[4] != 0xFF and all(b < 0x80 for b in head[6:10])


def _is_mpeg_audio_frame(head: bytes) -> bool:
    """An MPEG-1/2/2.5 audio frame header (layer I-III) whose every field holds a legal value.

    The 11-bit sync alone matches too much binary data, so reserved version and layer codes,
    free/invalid bitrate indexes, the reserved sample rate and reserved emphasis are refused.
    ADTS AAC (layer bits 00) is deliberately not matched.
    """
    if len(head) < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return False
    version = (head[1] >> 3) & 0b11
    layer = (head[1] >> 1) & 0b11
    bitrate_index = head[2] >> 4
    sample_rate_index = (head[2] >> 2) & 0b11
    emphasis = head[3] & 0b11
    return (
        version != 0b01
        and layer != 0b00
        and bitrate_index not in (0b0000, 0b1111)
        and sample_rate_index != 0b11
        and emphasis != 0b10
    )


def _is_wav(head: bytes) -> bool:
    return head[:4] == b"RIFF" and head[8:12] == b"WAVE"


def _is_ogg(head: bytes) -> bool:
    # Byte 4 is the Ogg page structure version, always 0.
    return head[:4] == b"OggS" and head[4:5] == b"\x00"


# Checked in order: fixed signatures first, the looser MPEG frame sync last.
_SIGNATURES: tuple[tuple[Callable[[bytes], bool], AudioFormat], ...] = (
    (_is_wav, WAV),
    (lambda head: head[:4] == b"fLaC", FLAC),
    (_is_ogg, OGG),
    (_is_mp4_audio, M4A),
    (lambda head: head[:4] == _EBML, WEBM),
    (_is_id3, MP3),
    (_is_mpeg_audio_frame, MP3),
)


def sniff(head: bytes) -> AudioFormat | None:
    """Identify audio from its first bytes (pass at least SNIFF_BYTES), never from a file name.

    Returns None for anything that is not one of the supported containers.
    """
    return next((fmt for matches, fmt in _SIGNATURES if matches(head)), None)


def validate_audio(path: Path, fmt: AudioFormat) -> None:
    """Cheap structural checks before transcription. Raises InvalidAudio.

    Only WAV is checked here: for compressed formats only a decoder can tell, and the transcriber
    turns decoding failures into InvalidAudio itself.
    """
    if fmt.name == WAV.name:
        validate_wav(path)


def validate_wav(path: Path) -> None:
    """Check a RIFF/WAVE file's chunk structure. Raises InvalidAudio saying what is wrong.

    Refused: a malformed header, no `fmt ` or `data` chunk, fewer data bytes than the data chunk
    declares, or no whole audio frame. A declared data size of 0 or 0xFFFFFFFF is the streaming
    convention for "unknown", so then whatever follows the header counts as the data.
    """
    with path.open("rb") as f:
        file_size = os.fstat(f.fileno()).st_size
        header = f.read(12)
        if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
            raise InvalidAudio("not a RIFF/WAVE file: the 12-byte header is missing or malformed")
        block_align: int | None = None
        for chunk_id, size, offset in _chunks(f, file_size):
            if chunk_id == b"fmt ":
                block_align = _fmt_block_align(f, size, available=file_size - offset)
            elif chunk_id == b"data":
                _check_data(size, available=file_size - offset, block_align=block_align)
                return
    raise InvalidAudio("WAV file has no data chunk (malformed or truncated before the audio)")


def wav_channels(path: Path) -> int | None:
    """The channel count of a WAV file, or None for other formats (only a decoder could tell)."""
    with path.open("rb") as f:
        return _declared_channels(f, os.fstat(f.fileno()).st_size)


def head_channels(head: bytes) -> int | None:
    """The channel count a WAV file's leading bytes declare (the API has only those at intake);
    None for other formats, or when the `fmt ` chunk lies beyond `head`."""
    return _declared_channels(io.BytesIO(head), len(head))


def head_wav_seconds(head: bytes, *, total_bytes: int) -> float | None:
    """A WAV file's duration from its leading bytes and its size (the bytes after the header at
    the `fmt ` chunk's byte rate); None for other formats or a `fmt ` chunk beyond `head`."""
    rate = _byte_rate(io.BytesIO(head), len(head))
    return max(0, total_bytes - WAV_HEADER_BYTES) / rate if rate else None


def wav_seconds(path: Path) -> float | None:
    """The duration of a WAV file (see head_wav_seconds); None for other formats."""
    with path.open("rb") as f:
        size = os.fstat(f.fileno()).st_size
        rate = _byte_rate(f, size)
    return max(0, size - WAV_HEADER_BYTES) / rate if rate else None


def _byte_rate(f: BinaryIO, size: int) -> int | None:
    """The `fmt ` chunk's average bytes per second, or None when unknown or zero."""
    header = f.read(12)
    if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
        return None
    for chunk_id, chunk_size, offset in _chunks(f, size):
        if chunk_id == b"fmt " and chunk_size >= 16 and size - offset >= 12:
            _, _, _, rate = struct.unpack("<HHII", f.read(12))
            return int(rate) or None
    return None


def _declared_channels(f: BinaryIO, size: int) -> int | None:
    header = f.read(12)
    if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
        return None
    for chunk_id, chunk_size, offset in _chunks(f, size):
        if chunk_id == b"fmt " and chunk_size >= 16 and size - offset >= 4:
            _, channels = struct.unpack("<HH", f.read(4))
            return int(channels) or None  # zero channels: validate_wav refuses the file
    return None


def check_channel_map(channel_map: Mapping[int, object] | None, *, channels: int | None) -> None:
    """Raise InvalidInput when `channel_map` names a channel the recording lacks.

    Nothing to check without a map, or when the channel count is unknown (not a WAV header).
    """
    if not channel_map or channels is None:
        return
    missing = sorted(c for c in channel_map if c >= channels)
    if missing:
        have = "channel 0" if channels == 1 else f"channels 0-{channels - 1}"
        raise InvalidInput(
            f"channel_map names channel {missing[0]}, but the recording has only {have}",
            code="invalid_channel_map",
        )


def _chunks(f: BinaryIO, file_size: int) -> Iterator[tuple[bytes, int, int]]:
    """Yield (id, declared size, offset of the body) for each RIFF chunk after the WAVE header."""
    position = 12
    while position + 8 <= file_size:
        f.seek(position)
        chunk_id, size = struct.unpack("<4sI", f.read(8))
        yield chunk_id, size, position + 8
        # Chunk bodies are padded to an even length.
        position += 8 + size + (size & 1)


def _fmt_block_align(f: BinaryIO, size: int, *, available: int) -> int:
    """Read the PCM fields of a `fmt ` chunk (positioned at its body) and return bytes per frame."""
    if size < 16 or available < 16:
        raise InvalidAudio("WAV fmt chunk is shorter than the 16 bytes every format needs")
    _, channels, sample_rate, _, block_align, _ = struct.unpack("<HHIIHH", f.read(16))
    if channels == 0:
        raise InvalidAudio("WAV fmt chunk declares zero channels")
    if sample_rate == 0:
        raise InvalidAudio("WAV fmt chunk declares a sample rate of zero")
    if block_align == 0:
        raise InvalidAudio("WAV fmt chunk declares a frame size of zero bytes")
    return int(block_align)


def _check_data(size: int, *, available: int, block_align: int | None) -> None:
    if block_align is None:
        raise InvalidAudio("WAV file has no fmt chunk before its data chunk")
    if size in _UNKNOWN_SIZES:
        size = available
    elif available < size:
        raise InvalidAudio(f"WAV file is truncated: {available} of {size} declared data bytes")
    if size // block_align == 0:
        raise InvalidAudio("WAV file contains no audio frames")
