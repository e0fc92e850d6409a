"""Keep freed tensor memory in the process on Linux/glibc, so training does not page-fault.

Why: glibc's malloc hands blocks above its mmap threshold (128 KiB at start, raised
dynamically up to 32 MiB) back to the kernel when they are freed, and trims the heap top
above twice that threshold. A training step allocates and frees the same activation and
gradient tensors every update; when they are a few MiB (a fused critic ensemble: six
256 x 256 activations per layer are 1.5 MiB each) the memory goes back to the kernel
each update and comes back through ~1,000 minor page faults per update (zero-filled by
the kernel), about 10 % of the update time on one CPU thread. PyTorch's CPU performance
guide recommends jemalloc or tcmalloc for the same reason; this module gets the same
effect with glibc itself, by raising the mmap and trim thresholds once per process.

It changes nothing but when memory is returned to the OS (resident memory may stay at its
peak), and does nothing elsewhere (macOS, musl) or when ``SKILLSTACK_MALLOC_TUNING=0``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

__all__ = ["keep_freed_memory"]

# glibc <malloc.h>
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
# The largest mmap threshold glibc accepts on 64-bit (HEAP_MAX_SIZE / 2); blocks above it
# (replay buffers, datasets) are still mmap'ed and returned when freed.
MMAP_THRESHOLD = 32 * 1024 * 1024
TRIM_THRESHOLD = 512 * 1024 * 1024

_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Raise glibc's mmap/trim thresholds once per process; True when they are in effect.

    Call before training on CPU (``skillstack train`` and ``skillstack bench training`` do).
    Idempotent; returns False (and changes nothing) off glibc or with
    ``SKILLSTACK_MALLOC_TUNING=0``.
    """
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    if os.environ.get("SKILLSTACK_MALLOC_TUNING", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # mallopt returns 1 on success; setting either threshold also stops glibc's dynamic
    # adjustment, which is what lets a few-MiB block bounce between heap and kernel.
    _applied = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _applied
