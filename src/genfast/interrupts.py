"""SIGINT (Ctrl-C) and SIGTERM as an exception, :class:`Interrupted`, that a command reports in one line.

Kept free of heavy imports so that the `genfast` command installs its handlers before it loads torch: a signal
during start-up is then reported like any other. Inside :func:`interrupts_as_exceptions` a signal that arrives
during an :func:`uninterrupted` block (a durable write) is held until the block is complete.
"""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator


class Interrupted(KeyboardInterrupt):
    """A SIGINT (Ctrl-C) or SIGTERM, raised between durable writes; `exit_code` is 128 + the signal number."""

    def __init__(self, signum: int, message: str | None = None) -> None:
        self.signum = int(signum)
        super().__init__(message or f"interrupted by {signal.Signals(self.signum).name}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


_held: list[int] = []  # signals that arrived during a durable write (main thread), raised when it is complete
_writing = 0  # depth of durable writes in progress on the main thread


def _raise_interrupted(signum: int, frame: object) -> None:
    if _writing:
        _held.append(signum)
    else:
        raise Interrupted(signum)


@contextmanager
def interrupts_as_exceptions() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM raise :class:`Interrupted` (held during durable writes); the previous
    handlers come back afterwards. Does nothing outside the main thread, where Python cannot handle signals."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _raise_interrupted) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextmanager
def uninterrupted() -> Iterator[None]:
    """Hold a SIGINT/SIGTERM (see interrupts_as_exceptions) until the enclosed write is complete."""
    global _writing
    if threading.current_thread() is not threading.main_thread():
        yield  # the handler runs in the main thread: it cannot cut this thread's write short
        return
    _writing += 1
    try:
        yield
    finally:
        _writing -= 1
        if not _writing and _held:
            signum = _held[0]
            _held.clear()
            raise Interrupted(signum)
