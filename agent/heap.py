"""Handing the C heap's free pages back to the operating system after a large job.

CPython returns its small-object arenas once they are empty, but memory that glibc's malloc served
(larger objects, SQLite's and the drivers' buffers) stays resident after it is freed, at the top of
the heap and in the gaps between live blocks. A cost report over 30 days of history left 4-6 MiB
of it in `campwatch run` (docs/benchmarks.md). malloc_trim(0) gives those pages back; elsewhere than
glibc (musl, macOS) there is no such call and nothing is done."""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        own = ctypes.CDLL(None)  # the symbols the process already has: libc's among them
    except OSError:
        return None
    trim = getattr(own, "malloc_trim", None)
    if trim is None:
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim  # type: ignore[no-any-return]


def release_free_heap() -> bool:
    """Give the heap's free pages back (glibc); True when some were. Takes well under a millisecond
    on the agent's heap."""
    trim = _malloc_trim()
    return bool(trim(0)) if trim is not None else False
