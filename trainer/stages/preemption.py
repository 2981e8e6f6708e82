"""Preemption: SIGTERM asks a training run to save its state at the next step and stop.

Schedulers (Slurm, Kubernetes, spot instances) send SIGTERM some seconds before they kill a
job. A run that hears it finishes the step it is in, writes its checkpoint and state as at
any checkpoint, and exits with EXIT_REQUEUE, which a job script can requeue on; run again
with `--resume auto`, the same command continues it (or starts it, where nothing was saved).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Final

from faceedit.errors import FaceEditError

# EX_TEMPFAIL (sysexits.h): "a temporary failure; the user is invited to retry".
EXIT_REQUEUE: Final[int] = 75


class Preempted(FaceEditError):
    """The run stopped on request with its state saved; running it again continues it."""

    exit_code = EXIT_REQUEUE


class StopRequest:
    """Set by the signal handler, read by the training loop between steps."""

    def __init__(self) -> None:
        self.signal_name: str | None = None

    @property
    def requested(self) -> bool:
        return self.signal_name is not None

    def request(self, signum: int, frame: FrameType | None = None) -> None:
        del frame
        self.signal_name = signal.Signals(signum).name


@contextmanager
def stop_on_sigterm() -> Iterator[StopRequest]:
    """A StopRequest that SIGTERM sets while the block runs; the previous handler afterwards.

    Outside the main thread (where Python cannot install handlers) the request is never set.
    """
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return
    previous = signal.signal(signal.SIGTERM, request.request)
    try:
        yield request
    finally:
        signal.signal(signal.SIGTERM, previous)


__all__ = ["EXIT_REQUEUE", "Preempted", "StopRequest", "stop_on_sigterm"]
