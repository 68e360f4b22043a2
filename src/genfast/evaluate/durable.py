"""Durable files for long runs: an fsync'd append-only JSON-lines journal and atomic whole-file replacement.

A journal's first line is a header holding the run's settings; every further line is one finished image. Only
newline-terminated lines count: a last line cut short by a crash is discarded (and cut off the file) on open.
"""
from __future__ import annotations

import fcntl
import json
import os
import threading
from pathlib import Path
from typing import Any

JOURNAL_FORMAT = "genfast-evaluate-journal"
JOURNAL_VERSION = 1


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (a created or renamed file) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Replace `path` with `text` so that readers (and a crash) see the old or the new file, never a mix."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def _settings_difference(old: dict[str, Any], new: dict[str, Any]) -> str:
    keys = sorted(set(old) | set(new))
    return "; ".join(f"{k}: {old.get(k)!r} then, {new.get(k)!r} now" for k in keys if old.get(k) != new.get(k))


class Journal:
    """The finished images of one (dataset, model) run, keyed by `entry[key_field]`; appends are durable.

    Opening takes an exclusive lock on the file (a second process writing the same journal is refused) and
    refuses a journal written with different `settings`. Use as a context manager or call close().
    """

    def __init__(self, path: str | Path, settings: dict[str, Any], key_field: str = "path") -> None:
        self.path = Path(path)
        self.settings = json.loads(json.dumps(settings))  # as it reads back from the header
        self.key_field = key_field
        self.entries: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        created = not self.path.exists()
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ValueError(f"{self.path} is being written by another process (another genfast "
                                 f"evaluate with the same --out, dataset and model name?)") from None
            self._load()
            if created:
                fsync_dir(self.path.parent)
        except BaseException:
            os.close(self._fd)
            raise

    def _load(self) -> None:
        size = os.fstat(self._fd).st_size
        data = os.pread(self._fd, size, 0) if size else b""
        end = data.rfind(b"\n") + 1  # bytes after the last newline are an unfinished line
        if end < len(data):
            os.ftruncate(self._fd, end)
            os.fsync(self._fd)
        lines = data[:end].splitlines()
        if not lines:
            self._write_line({"format": JOURNAL_FORMAT, "version": JOURNAL_VERSION, "settings": self.settings})
            return
        header = self._parse(lines[0], 1)
        if header.get("format") != JOURNAL_FORMAT or header.get("version") != JOURNAL_VERSION:
            raise ValueError(f"{self.path} is not a version-{JOURNAL_VERSION} genfast evaluate journal")
        if header.get("settings") != self.settings:
            raise ValueError(f"{self.path} was written with different settings "
                             f"({_settings_difference(header.get('settings') or {}, self.settings)}); "
                             f"refusing to mix results: use another output folder or model name, or delete "
                             f"{self.path} to start over")
        for number, line in enumerate(lines[1:], start=2):
            entry = self._parse(line, number)
            if self.key_field not in entry:
                raise ValueError(f"{self.path}: line {number} has no {self.key_field!r} field")
            self.entries.setdefault(entry[self.key_field], entry)

    def _parse(self, line: bytes, number: int) -> dict[str, Any]:
        try:
            value = json.loads(line)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{self.path}: line {number} is corrupt ({exc}); only an unfinished last line is "
                             f"repaired automatically") from None
        if not isinstance(value, dict):
            raise ValueError(f"{self.path}: line {number} is not a JSON object")
        return value

    def _write_line(self, value: dict[str, Any]) -> None:
        data = (json.dumps(value, allow_nan=False) + "\n").encode("utf-8")
        os.lseek(self._fd, 0, os.SEEK_END)
        written = 0
        while written < len(data):
            written += os.write(self._fd, data[written:])
        os.fsync(self._fd)

    def append(self, entry: dict[str, Any]) -> None:
        """Record one finished item durably (written and fsync'd before this returns); thread-safe."""
        key = entry[self.key_field]
        with self._lock:
            if key in self.entries:
                raise ValueError(f"{self.path}: {self.key_field} {key!r} is already recorded")
            self._write_line(entry)
            self.entries[key] = entry

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # also releases the lock
            self._fd = -1

    def __enter__(self) -> "Journal":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
