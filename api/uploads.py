"""Streaming multipart reading: parts come off the socket one by one, file data in bounded chunks.

Werkzeug's own form parsing spools a whole file to a temporary file before the view sees it; this
reader hands the view a file-like part instead, so an upload streams straight into the blob store
while we hash it, count it and stop it at the size limit.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

from werkzeug.datastructures import Headers
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

CHUNK = 1024 * 1024
UPLOAD = "an upload"
FORM_FIELD = "a form field"


class UploadTooLarge(Exception):
    """A limit was hit while reading: `what` was over `limit` bytes (the 413 names both)."""

    def __init__(self, what: str, limit: int) -> None:
        super().__init__(f"{what} is over {limit} bytes")
        self.what, self.limit = what, limit


class MalformedUpload(Exception):
    pass


@dataclass
class Part:
    name: str
    filename: str | None
    headers: Headers


class MultipartReader:
    def __init__(self, stream: IO[bytes], boundary: bytes, *, max_field_bytes: int) -> None:
        self._stream = stream
        self._max_field_bytes = max_field_bytes
        self._decoder = MultipartDecoder(boundary, max_form_memory_size=4 * CHUNK, max_parts=50)
        self._in_part = False

    def next_part(self) -> Part | None:
        """The next part's headers (the previous part's unread data is skipped), or None at the end."""
        while self._in_part:
            self.read_chunk()
        while True:
            event = self._event()
            if isinstance(event, Epilogue):
                return None
            if isinstance(event, File):
                self._in_part = True
                return Part(event.name, event.filename, event.headers)
            if isinstance(event, Field):
                self._in_part = True
                return Part(event.name, None, event.headers)

    def read_chunk(self) -> bytes:
        """The next piece of the current part's body; b"" once it is exhausted."""
        while self._in_part:
            event = self._event()
            if not isinstance(event, Data):
                raise MalformedUpload("unexpected multipart structure")
            self._in_part = event.more_data
            if event.data:
                return event.data
        return b""

    def read_field(self) -> str:
        data = bytearray()
        while chunk := self.read_chunk():
            data.extend(chunk)
            if len(data) > self._max_field_bytes:
                raise UploadTooLarge(FORM_FIELD, self._max_field_bytes)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedUpload("form fields must be UTF-8") from exc

    def _event(self) -> object:
        while True:
            try:
                event = self._decoder.next_event()
            except ValueError as exc:
                raise MalformedUpload("the multipart body is malformed or truncated") from exc
            if not isinstance(event, NeedData):
                return event
            data = self._stream.read(CHUNK)
            self._decoder.receive_data(data or None)


class HashingPartStream(io.RawIOBase):
    """A readable view of one part's body that hashes and counts it and enforces a size limit.

    `head` is data already read from the part (for sniffing) and is served first.
    """

    def __init__(self, reader: MultipartReader, *, head: bytes, limit: int) -> None:
        self._reader = reader
        self._buffer = memoryview(head)
        self._limit = limit
        self.sha256 = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, target: bytearray | memoryview) -> int:  # type: ignore[override]
        if not self._buffer:
            chunk = self._reader.read_chunk()
            if not chunk:
                return 0
            self._buffer = memoryview(chunk)
        n = min(len(target), len(self._buffer))
        piece = self._buffer[:n]
        target[:n] = piece
        self._buffer = self._buffer[n:]
        self.size += n
        if self.size > self._limit:
            raise UploadTooLarge(UPLOAD, self._limit)
        self.sha256.update(piece)
        return n


FILE_FIELDS = ("file", "audio")


def read_form(
    reader: MultipartReader, on_file: Callable[[MultipartReader], None]
) -> dict[str, str]:
    """Walk a job upload: text parts become fields (returned by name); `on_file` reads the body of
    the first file part named `file` or `audio`; any other file part is skipped.

    Intake and the Idempotency-Key fingerprint both walk uploads through here, so they always
    agree on which part is the recording.
    """
    fields: dict[str, str] = {}
    seen_file = False
    while (part := reader.next_part()) is not None:
        if part.name in FILE_FIELDS and part.filename is not None and not seen_file:
            seen_file = True
            on_file(reader)
        elif part.filename is None:
            fields[part.name] = reader.read_field()
    return fields


def read_head(reader: MultipartReader, size: int) -> bytes:
    """At least `size` bytes of the current part (fewer only if the part is shorter)."""
    head = bytearray()
    while len(head) < size and (chunk := reader.read_chunk()):
        head.extend(chunk)
    return bytes(head)
