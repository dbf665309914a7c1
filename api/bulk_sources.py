"""What `callintel bulk submit` sends: files, directories (recursively), globs, CSV manifests and
`s3://` prefixes, resolved into one list of calls (or problems, each naming its source and line).
"""

from __future__ import annotations

import csv
import glob
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

AUDIO = {".wav", ".mp3", ".flac", ".ogg", ".m4a", ".webm"}
TRANSCRIPTS = {".json", ".txt"}
MANIFEST_FIELDS = {"path", "external_id", "call_type", "metadata"}


@dataclass(frozen=True)
class Call:
    """One file to submit, with what the batch item says about it."""

    path: Path  # resolved
    external_id: str
    metadata: dict[str, Any] = field(default_factory=dict)
    call_type: str | None = None

    @property
    def is_audio(self) -> bool:
        return self.path.suffix.lower() in AUDIO


@dataclass
class Found:
    calls: list[Call] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    storage_prefixes: list[str] = field(default_factory=list)


def find_calls(sources: list[str]) -> Found:
    """Every call named by `sources`, each file once (the first mention wins)."""
    found = Found()
    seen: set[Path] = set()
    for source in sources:
        before = len(found.calls)
        _add_source(found, source)
        fresh = [c for c in found.calls[before:] if c.path not in seen]
        seen.update(c.path for c in fresh)
        found.calls[before:] = fresh
    return found


def _add_source(found: Found, source: str) -> None:
    if source.startswith("s3://"):
        found.storage_prefixes.append(source)
        return
    path = Path(source)
    if glob.has_magic(source):
        _add_glob(found, source)
    elif path.is_dir():
        root = path.resolve()
        files = sorted(p for p in root.rglob("*") if _wanted(p, root))
        if not files:
            found.problems.append(f"{source}: no audio files or transcripts in this directory")
        found.calls.extend(Call(p, p.relative_to(root).as_posix()) for p in files)
    elif path.suffix.lower() == ".csv" and path.is_file():
        _add_manifest(found, path)
    elif path.is_file():
        if _supported(path):
            found.calls.append(Call(path.resolve(), path.name))
        else:
            found.problems.append(f"{source}: not an audio file or a transcript")
    else:
        found.problems.append(f"{source}: no such file or directory")


def _add_glob(found: Found, pattern: str) -> None:
    parts = Path(pattern).parts
    fixed = parts[: next(i for i, p in enumerate(parts) if glob.has_magic(p))]
    root = Path(*fixed).resolve() if fixed else Path.cwd()
    matches = sorted(Path(m).resolve() for m in glob.glob(pattern, recursive=True))
    files = [m for m in matches if m.is_file() and _supported(m)]
    if not files:
        found.problems.append(f"{pattern}: no audio files or transcripts match")
    found.calls.extend(Call(m, _relative(m, root)) for m in files)


def _add_manifest(found: Found, manifest: Path) -> None:
    """Rows of a CSV manifest; a row that does not parse is reported with its line number."""
    base = manifest.resolve().parent
    with manifest.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        if "path" not in (reader.fieldnames or []):
            found.problems.append(f"{manifest}: the manifest has no `path` column")
            return
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                found.problems.append(f"{manifest} line {reader.line_num}: {exc}")
                continue
            try:
                found.calls.append(_manifest_call(row, base))
            except ValueError as exc:
                found.problems.append(f"{manifest} line {reader.line_num}: {exc}")


def _manifest_call(row: dict[str | None, Any], base: Path) -> Call:
    if row.get(None):
        raise ValueError("more fields than the header has")
    written = (row.get("path") or "").strip()
    if not written:
        raise ValueError("no path")
    path = (base / written).resolve()
    if not path.is_file():
        raise ValueError(f"{written}: no such file")
    if not _supported(path):
        raise ValueError(f"{written}: not an audio file or a transcript")
    metadata: dict[str, Any] = {
        k: v for k, v in row.items() if k and k not in MANIFEST_FIELDS and v not in (None, "")
    }
    if raw := (row.get("metadata") or "").strip():
        try:
            parsed = json.loads(raw)
        except ValueError:
            raise ValueError("metadata is not valid JSON") from None
        if not isinstance(parsed, dict):
            raise ValueError("metadata is not a JSON object")
        metadata.update(parsed)
    external_id = (row.get("external_id") or "").strip() or written
    return Call(path, external_id, metadata, (row.get("call_type") or "").strip() or None)


def _supported(path: Path) -> bool:
    return path.suffix.lower() in AUDIO | TRANSCRIPTS


def _wanted(path: Path, root: Path) -> bool:
    """A supported file under `root`, not hidden (a state file or editor backup is no call)."""
    hidden = any(part.startswith(".") for part in path.relative_to(root).parts)
    return not hidden and path.is_file() and _supported(path)


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.name
