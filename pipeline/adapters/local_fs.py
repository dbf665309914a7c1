"""BlobStore on a local directory (the embedded default). Writes are atomic: temp file, then rename.

Folders are an implementation detail, as on S3: a delete (or a failed write) removes the folders
it leaves empty, so a refused upload leaves no trace.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from pipeline.errors import BlobNotFound, InvalidInput, TransientError
from pipeline.ports import BlobStat

CHUNK = 1024 * 1024
_ATTEMPTS = 3  # creating a temp file whose folder a concurrent delete just pruned


class LocalBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        parts = PurePosixPath(key).parts
        if not key or key.startswith("/") or ".." in parts or "\\" in key:
            raise InvalidInput("invalid blob key")
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            raise InvalidInput("invalid blob key")
        return path

    def put_stream(self, key: str, stream: BinaryIO, *, content_type: str) -> None:
        path = self._path(key)
        fd, tmp = self._temp_file(path, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(stream, out, CHUNK)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            self._prune(path.parent)
            raise

    def put_bytes(self, key: str, data: bytes, *, content_type: str) -> None:
        path = self._path(key)
        fd, tmp = self._temp_file(path, prefix=".put-")
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)

    def _temp_file(self, path: Path, *, prefix: str) -> tuple[int, str]:
        """A temp file beside `path`, its folders made; retried because a concurrent delete may
        prune a folder between the mkdir and the file's creation."""
        for _ in range(_ATTEMPTS - 1):
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                return tempfile.mkstemp(dir=path.parent, prefix=prefix)
            except FileNotFoundError:
                continue
        path.parent.mkdir(parents=True, exist_ok=True)
        return tempfile.mkstemp(dir=path.parent, prefix=prefix)

    def _prune(self, folder: Path) -> None:
        """Remove `folder` and its parents while they are empty, never the root itself."""
        while folder != self.root and folder.is_relative_to(self.root):
            try:
                folder.rmdir()
            except OSError:  # not empty (or already gone, or raced by a writer): stop here
                return
            folder = folder.parent

    def get_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except OSError as exc:
            raise _translate(exc, key) from exc

    def download(self, key: str, dest: Path) -> None:
        try:
            shutil.copyfile(self._path(key), dest)
        except OSError as exc:
            raise _translate(exc, key) from exc

    def head(self, key: str, size: int) -> bytes:
        try:
            with self._path(key).open("rb") as f:
                return f.read(max(size, 0))
        except OSError as exc:
            raise _translate(exc, key) from exc

    def stat(self, key: str) -> BlobStat:
        path = self._path(key)
        try:
            info = path.stat()
        except OSError as exc:
            raise _translate(exc, key) from exc
        if not path.is_file():
            raise BlobNotFound(f"no blob {key}")  # a "directory" is not an object, as on S3
        # Every write renames a new file into place, so a new version has a new inode even when
        # the clock's granularity gives it the old mtime.
        etag = f"{info.st_ino:x}-{info.st_mtime_ns:x}-{info.st_size:x}"
        return BlobStat(key=key, size=info.st_size, etag=etag)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        path = self._path(key)
        path.unlink(missing_ok=True)
        self._prune(path.parent)

    def delete_prefix(self, prefix: str) -> int:
        folder = self._path(prefix.rstrip("/"))
        if folder == self.root:
            raise InvalidInput("invalid blob prefix")
        try:
            removed = sum(1 for p in folder.rglob("*") if p.is_file() and not _temporary(p))
            shutil.rmtree(folder)
            self._prune(folder.parent)  # no empty folders left behind, as `delete` leaves none
        except FileNotFoundError:
            return 0  # nothing there, or removed by a concurrent call: idempotent either way
        except NotADirectoryError:
            return 0  # a key, not a folder: objects "under" it do not exist
        except OSError as exc:
            raise TransientError(f"blob storage error ({type(exc).__name__})") from exc
        return removed

    def presigned_url(self, key: str, *, expires_s: int) -> str | None:
        return None  # a local directory is never reachable by a provider

    def presigned_put(self, key: str, *, content_type: str, expires_s: int) -> str | None:
        return None  # nobody outside reaches a local directory: the API takes the upload itself

    def check(self) -> None:
        try:
            self.put_bytes(".health/probe", b"ok", content_type="text/plain")
        except OSError as exc:
            raise TransientError("blob directory is not writable") from exc


def _temporary(path: Path) -> bool:
    """A write in progress (`.upload-…`, `.put-…`): removed with its folder, not counted."""
    return path.name.startswith((".upload-", ".put-"))


def _translate(exc: OSError, key: str) -> BlobNotFound | TransientError:
    # A key that names a "directory" (a prefix of other keys) does not exist, as on S3.
    if isinstance(exc, FileNotFoundError | IsADirectoryError | NotADirectoryError):
        return BlobNotFound(f"no blob {key}")
    return TransientError(f"blob storage error ({type(exc).__name__})")
