"""The memory allocator's policy, fixed in every measured process before anything is timed.

glibc's malloc adapts as a process runs: a freed block larger than the mmap threshold raises the
threshold to that size (the "dynamic mmap threshold"), and a heap whose free top exceeds the trim
threshold is handed back to the kernel. Which large buffer is freed first, and when, differs
between two processes of the same program, so one process of raw PyTorch kept mapping and
unmapping its per-step buffers (10,784 minor page faults a step, measured on this project's
2-core VM) while another reused them (0.1 a step). On a VM that backs guest memory lazily and
takes back what the guest frees (virtio-balloon's free page reporting), every such fault costs
a fresh page from the host: the process runs slower for minutes, or for its whole life, at
random. That is a process-to-process effect no number of rounds within one process averages out.

"fixed" (the default) sets both thresholds once, so every process reuses its heap from the
warm-up on: blocks up to MMAP_THRESHOLD come from the heap, and the heap is never trimmed below
TRIM_THRESHOLD. "glibc" leaves malloc as it comes. Elsewhere (macOS, musl) nothing is set and the
record says so.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

# mallopt's parameter numbers (glibc's malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 2**20  # the most glibc allows on 64-bit is 32 MiB (HEAP_MAX / 2)
TRIM_THRESHOLD = 2**30


@functools.cache
def _libc():
    name = ctypes.util.find_library("c")
    if not name:
        return None
    libc = ctypes.CDLL(name)
    if not hasattr(libc, "mallopt") or not hasattr(libc, "gnu_get_libc_version"):
        return None  # not glibc: another allocator, with policies of its own
    libc.gnu_get_libc_version.restype = ctypes.c_char_p
    return libc


def apply(policy: str) -> dict:
    """Sets the process's allocator policy; returns what holds now, for the run's record."""
    libc = _libc()
    if libc is None:
        return {"allocator": policy, "applied": False, "why": "not glibc's malloc"}
    record = {"allocator": policy, "glibc": libc.gnu_get_libc_version().decode()}
    if policy == "glibc":
        return {**record, "applied": False, "why": "as it comes"}
    done = libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) and libc.mallopt(
        M_TRIM_THRESHOLD, TRIM_THRESHOLD
    )
    return {
        **record,
        "applied": bool(done),
        "mmap_threshold": MMAP_THRESHOLD,
        "trim_threshold": TRIM_THRESHOLD,
    }
