"""Several processes, one job, on PyTorch's own launcher: the ranks torchrun starts and the store they share.

`join()` reads what `torchrun` (or any launcher that sets RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT) set up
and connects to its key-value store through `torch.distributed.rendezvous` (under torchrun, the elastic agent's
store, which can outlive a restart: each restart uses keys of its own); a process started alone is a world of one with an in-process store, so
one code path serves both. `World` adds what a job needs on that store: counters, a barrier and a value one rank
shares, each with a timeout, and a failure one rank reports that stops the others with its message.
"""
from __future__ import annotations

import itertools
import os
import time
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache
from typing import Callable

import torch

DEFAULT_TIMEOUT = 1800.0
"""Seconds a rank waits for the others (to start, or for any image to finish) before it stops the job."""
POLL_SECONDS = 0.05


class RankError(RuntimeError):
    """A distributed job stopped: a rank failed (its message is repeated) or the others did not answer in time."""


def launched() -> bool:
    """Whether this process is one of several started by torchrun (or another launcher setting WORLD_SIZE)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1")) > 1
    except ValueError:
        raise ValueError(f"WORLD_SIZE must be an integer, got {os.environ['WORLD_SIZE']!r}") from None


@dataclass
class World:
    """This process's `rank` among `size`, the store they share and the timeout of every wait on it."""

    rank: int
    size: int
    local_rank: int
    store: torch.distributed.Store
    timeout: float = DEFAULT_TIMEOUT
    _jobs: itertools.count = field(default_factory=itertools.count, repr=False)

    @classmethod
    def alone(cls, timeout: float = DEFAULT_TIMEOUT) -> "World":
        """A world of one process, with an in-process store."""
        return cls(0, 1, 0, torch.distributed.HashStore(), timeout)

    @property
    def label(self) -> str:
        return f"rank {self.rank} of {self.size}"

    def job(self) -> "World":
        """The same world with a store of its own for one job (every rank must start its jobs in the same order)."""
        store = torch.distributed.PrefixStore(f"genfast/job-{next(self._jobs)}", self.store)
        return World(self.rank, self.size, self.local_rank, store, self.timeout)

    def add(self, key: str, amount: int = 1) -> int:
        """Add to a counter every rank sees; returns its new value (amount 0 reads it)."""
        return int(self.store.add(key, amount))

    def fail(self, message: str) -> None:
        """Report this rank's failure to the others (the first report is kept)."""
        if self.add("failures") == 1:
            self.store.set("error", f"{self.label} failed: {message}")

    def check_failures(self) -> None:
        """Raise RankError with another rank's failure, if one was reported."""
        if self.store.check(["error"]):
            raise RankError(self.store.get("error").decode("utf-8", "replace"))

    def wait(self, ready: Callable[[], bool], what: str, progress: Callable[[], bool] | None = None) -> None:
        """Poll until `ready()`; RankError if a rank fails meanwhile, or if `timeout` seconds pass without it
        (counted from the last poll at which `progress()` said the job moved on)."""
        deadline = time.monotonic() + self.timeout
        while not ready():
            self.check_failures()
            if progress is not None and progress():
                deadline = time.monotonic() + self.timeout
            if time.monotonic() > deadline:
                raise RankError(f"{self.label}: waited {self.timeout:g} s for {what}; is a rank stuck or gone? "
                                f"(--timeout sets the wait)")
            time.sleep(POLL_SECONDS)

    def barrier(self, name: str) -> None:
        """Return once every rank has reached the barrier `name`."""
        if self.add(f"barrier/{name}") == self.size:
            self.store.set(f"barrier/{name}/open", "1")
        self.wait(lambda: self.store.check([f"barrier/{name}/open"]), f"every rank to reach {name!r}")

    def share(self, name: str, value: bytes | None = None) -> bytes:
        """Rank 0 passes `value`; every rank returns it."""
        if self.rank == 0:
            self.store.set(f"shared/{name}", value if value is not None else b"")
        self.wait(lambda: self.store.check([f"shared/{name}"]), f"rank 0 to share {name!r}")
        return bytes(self.store.get(f"shared/{name}"))


@lru_cache(maxsize=1)
def _rendezvous(timeout: float) -> tuple[torch.distributed.Store, int, int]:
    store, rank, size = next(torch.distributed.rendezvous("env://", timeout=timedelta(seconds=timeout)))
    return store, rank, size


def join(timeout: float = DEFAULT_TIMEOUT) -> World:
    """The world this process belongs to: torchrun's ranks and store when launched by it, else a world of one."""
    if not launched():
        return World.alone(timeout)
    if not torch.distributed.is_available():
        raise ValueError("WORLD_SIZE > 1 asks for several processes, but this PyTorch build has no "
                         "torch.distributed")
    missing = [v for v in ("RANK", "MASTER_ADDR", "MASTER_PORT") if v not in os.environ]
    if missing:
        raise ValueError(f"WORLD_SIZE is {os.environ['WORLD_SIZE']} but {', '.join(missing)} is not set: start "
                         f"the processes with torchrun (README, 'More than one GPU')")
    store, rank, size = _rendezvous(float(timeout))
    # an elastic restart may keep the store: each attempt counts in keys of its own
    attempt = torch.distributed.PrefixStore(f"attempt-{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}", store)
    return World(rank, size, int(os.environ.get("LOCAL_RANK", rank)), attempt, timeout)


def local_device(device: str | None, world: World) -> str | None:
    """The device a rank uses: with several ranks and CUDA, `cuda:LOCAL_RANK` for no device or plain "cuda";
    anything else as given."""
    if world.size > 1 and device in (None, "cuda") and torch.cuda.is_available():
        return f"cuda:{world.local_rank % torch.cuda.device_count()}"
    return device
