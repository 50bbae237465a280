"""Ctrl-C at any moment ends a command cleanly.

A KeyboardInterrupt raised inside a native call (numba loading its cached kernel, a numba
kernel) can crash the process or leave "a result with an exception set". `deferred_interrupts()`
holds SIGINT back around such short calls and raises KeyboardInterrupt right after them; the CLI
turns it into `kirag CMD: interrupted`, exit 130.

`checkpoint(name)` marks a named point for tests: with KIRAG_TEST_INTERRUPT_AT=name in the
environment, kirag sends itself SIGINT when it reaches that point (deterministic interrupt tests).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator

TEST_ENV = "KIRAG_TEST_INTERRUPT_AT"


def main_takes_over() -> None:
    """The CLI's main() handles KeyboardInterrupt itself from here on."""
    from kirag._startup import interrupted_while_starting

    if signal.getsignal(signal.SIGINT) is interrupted_while_starting:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def checkpoint(name: str, sent: signal.Signals = signal.SIGINT) -> None:
    """Send this process `sent` (SIGINT unless told) when KIRAG_TEST_INTERRUPT_AT names this
    point (tests only)."""
    if os.environ.get(TEST_ENV) == name:
        signal.raise_signal(sent)


@contextlib.contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Hold SIGINT back for the body (keep it short: one native call, one batch), then raise
    KeyboardInterrupt if one came. Only the main thread can; elsewhere the body just runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous is not signal.default_int_handler:  # ignored, or someone else's handler
        yield
        return
    pending: list[int] = []
    signal.signal(signal.SIGINT, lambda number, frame: pending.append(number))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if pending:
        raise KeyboardInterrupt


@contextlib.contextmanager
def kept_signal_stack() -> Iterator[None]:
    """Give this thread back its alternate signal stack after the body.

    OpenVINO's CPU plugin installs a signal stack of its own when it compiles a model and puts
    back the one it found when that model is freed; two models freed out of order leave a freed
    stack installed, and the next Ctrl-C (CPython's handlers run on that stack) is a segfault."""
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        yield
        return

    class StackT(ctypes.Structure):  # glibc's stack_t
        _fields_ = [("sp", ctypes.c_void_p), ("flags", ctypes.c_int), ("size", ctypes.c_size_t)]

    libc = ctypes.CDLL(None, use_errno=True)
    saved = StackT()
    if libc.sigaltstack(None, ctypes.byref(saved)) != 0:
        yield
        return
    try:
        yield
    finally:
        libc.sigaltstack(ctypes.byref(saved), None)  # EPERM only while on that stack: keep it
