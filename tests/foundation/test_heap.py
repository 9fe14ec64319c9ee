"""agent.heap: what a large job freed goes back to the operating system."""

from __future__ import annotations

import subprocess
import sys

import pytest

from agent.heap import _malloc_trim

# In a child, so this test process's own heap is not what is measured: 300 blocks of 100 KB (below
# glibc's mmap threshold, so they come from the heap), all freed but the last, which keeps the top
# of the heap in use (free() alone then gives nothing back).
CHILD = """
from agent.heap import release_free_heap

def anon_kib():
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1])

blocks = [bytearray(100_000) for _ in range(300)]
last = blocks[-1]
del blocks
before = anon_kib()
trimmed = release_free_heap()
print(before, anon_kib(), trimmed)
"""


@pytest.mark.skipif(_malloc_trim() is None, reason="not glibc: no malloc_trim, nothing to release")
def test_freed_heap_memory_leaves_the_resident_set_once_released() -> None:
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, check=True).stdout
    before, after, trimmed = out.split()
    assert trimmed == "True"
    assert int(before) - int(after) > 20_000  # KiB: most of the 29 MiB freed
