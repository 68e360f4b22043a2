"""Durable files for long runs: an fsync'd append-only JSON-lines journal, atomic whole-file replacement, and
SIGINT/SIGTERM handling that never interrupts either half-way.

A journal's first line is a header holding the run's settings; every further line is one finished item. The
header is written with the first item, so a run that fails before finishing anything leaves no journal. Only
newline-terminated lines count: a last line cut short by a crash is discarded (and cut off the file) on open.

Inside `genfast.interrupts.interrupts_as_exceptions` a SIGINT or SIGTERM raises `Interrupted` in the main
thread, but one that arrives while a journal line or an atomic file is being written (and fsync'd) is held until
the write is complete: an interrupted run has journalled every item it reported and no part of any other.
"""
from __future__ import annotations

import fcntl
import json
import os
import threading
from contextlib import suppress
from pathlib import Path
from typing import Any, Sequence

from genfast.cli import naming
from genfast.interrupts import uninterrupted

JOURNAL_FORMAT = "genfast-evaluate-journal"
JOURNAL_VERSION = 2  # 2: entries carry the image's content hash; the settings name dtype, device and model files


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
    with uninterrupted():
        try:
            with open(tmp, "w", encoding="utf-8", newline="") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            with suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise type(exc)(exc.errno, exc.strerror, str(path)) from exc
        fsync_dir(path.parent)


def _settings_difference(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> str:
    """Each differing setting as "name: old then, new now"; fields of a nested setting of the same shape (a
    method with other parameters) as "parent.name"."""
    parts = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k), new.get(k)
        if isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys():
            parts.append(_settings_difference(a, b, f"{prefix}{k}."))
        elif a != b:
            parts.append(f"{prefix}{k}: {a!r} then, {b!r} now")
    return "; ".join(p for p in parts if p)


def _parse_line(path: Path, line: bytes, number: int) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: line {number} is corrupt ({exc}); only an unfinished last line is "
                         f"repaired automatically") from None
    if not isinstance(value, dict):
        raise ValueError(f"{path}: line {number} is not a JSON object")
    return value


def _parse_journal(path: Path, data: bytes, settings: dict[str, Any],
                   key_fields: Sequence[str]) -> tuple[bool, dict[tuple[Any, ...], dict[str, Any]]]:
    """(whether it has a header, its entries by key) from a journal's complete lines; ValueError for a journal
    written with other settings, or a corrupt line."""
    lines = data.splitlines()
    if not lines:
        return False, {}  # the header is written with the first entry
    header = _parse_line(path, lines[0], 1)
    if header.get("format") != JOURNAL_FORMAT or header.get("version") != JOURNAL_VERSION:
        raise ValueError(f"{path} is not a version-{JOURNAL_VERSION} genfast evaluate journal (delete it "
                         f"to start over, or use another output folder)")
    if header.get("settings") != settings:
        raise ValueError(f"{path} was written with different settings "
                         f"({_settings_difference(header.get('settings') or {}, settings)}); "
                         f"refusing to mix results: use another output folder or model name, or delete "
                         f"{path} to start over")
    entries: dict[tuple[Any, ...], dict[str, Any]] = {}
    for number, line in enumerate(lines[1:], start=2):
        entry = _parse_line(path, line, number)
        missing = [f for f in key_fields if f not in entry]
        if missing:
            raise ValueError(f"{path}: line {number} has no {missing[0]!r} field")
        entries.setdefault(tuple(entry[f] for f in key_fields), entry)
    return True, entries


def read_journal(path: str | Path, settings: dict[str, Any], key_fields: Sequence[str] = ("path",),
                 unlocked: bool = False) -> dict[tuple[Any, ...], dict[str, Any]]:
    """The entries of a journal that another process may be appending to, read without changing it (an
    unfinished last line is left out); with `unlocked`, ValueError if a process holds it open for writing."""
    path = Path(path)
    with open(path, "rb") as f:
        if unlocked:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ValueError(f"{path} is being written by another process (another genfast evaluate with "
                                 f"the same --out, dataset and model name?)") from None
        data = f.read()
    return _parse_journal(path, data[:data.rfind(b"\n") + 1], json.loads(json.dumps(settings)), key_fields)[1]


class Journal:
    """The finished items of one (dataset, model) run, keyed by the tuple of their `key_fields`; appends are
    durable.

    Opening takes an exclusive lock on the file (a second process writing the same journal is refused) and
    refuses a journal written with different `settings`. Use as a context manager or call close(); a journal
    that received nothing is removed on close.
    """

    def __init__(self, path: str | Path, settings: dict[str, Any], key_fields: Sequence[str] = ("path",)) -> None:
        self.path = Path(path)
        self.settings = json.loads(json.dumps(settings))  # as it reads back from the header
        self.key_fields = tuple(key_fields)
        self.entries: dict[tuple[Any, ...], dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._has_header = False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ValueError(f"{self.path} is being written by another process (another genfast "
                                 f"evaluate with the same --out, dataset and model name?)") from None
            self._load()
        except BaseException:
            os.close(self._fd)
            raise

    def key(self, entry: dict[str, Any]) -> tuple[Any, ...]:
        """The key an entry is recorded under."""
        return tuple(entry[f] for f in self.key_fields)

    def _load(self) -> None:
        size = os.fstat(self._fd).st_size
        data = os.pread(self._fd, size, 0) if size else b""
        end = data.rfind(b"\n") + 1  # bytes after the last newline are an unfinished line
        if end < len(data):
            os.ftruncate(self._fd, end)
            os.fsync(self._fd)
        self._has_header, self.entries = _parse_journal(self.path, data[:end], self.settings, self.key_fields)

    def _write_lines(self, values: list[dict[str, Any]]) -> None:
        data = "".join(json.dumps(value, allow_nan=False) + "\n" for value in values).encode("utf-8")
        with naming(self.path):  # e.g. a full disk: a partial line is cut off when the journal is opened again
            os.lseek(self._fd, 0, os.SEEK_END)
            written = 0
            while written < len(data):
                written += os.write(self._fd, data[written:])
            os.fsync(self._fd)

    def append(self, entry: dict[str, Any]) -> None:
        """Record one finished item durably (written and fsync'd before this returns, not cut short by a
        signal); thread-safe."""
        key = self.key(entry)
        with self._lock, uninterrupted():
            if self._fd < 0:
                raise ValueError(f"{self.path}: the journal is closed")
            if key in self.entries:
                raise ValueError(f"{self.path}: {', '.join(self.key_fields)} {key!r} is already recorded")
            header = {"format": JOURNAL_FORMAT, "version": JOURNAL_VERSION, "settings": self.settings}
            self._write_lines([entry] if self._has_header else [header, entry])
            if not self._has_header:
                fsync_dir(self.path.parent)
                self._has_header = True
            self.entries[key] = entry

    def close(self) -> None:
        """Release the file (after an append in progress in another thread); remove it if it is still empty."""
        with self._lock:
            if self._fd >= 0:
                if not self._has_header:
                    self.path.unlink(missing_ok=True)
                os.close(self._fd)  # also releases the lock
                self._fd = -1

    def __enter__(self) -> "Journal":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
