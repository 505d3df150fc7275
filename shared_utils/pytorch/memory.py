"""How CPU memory is handed to PyTorch's tensors: freed memory is kept for the next step, not given back.

PyTorch's CPU allocator has no cache: every tensor is a fresh malloc and every free a free. glibc serves an
allocation above its mmap threshold (at most 32 MB) with a fresh mmap and gives it back at free with munmap,
so a training step's activations (hundreds of MB at batch 2,000) are new pages every step, and the kernel zeroes
each page again when it is first touched. A profile of the Muon recipe's training (`perf record` on
projects/cifar_best/muon_ablation.py, 2-core Intel Xeon, float32) found 33% of all CPU samples in the kernel's
clear_page_erms. Two glibc settings end it: no mmap for malloc (M_MMAP_MAX = 0: large blocks come from the heap)
and no trimming of the heap's top (M_TRIM_THRESHOLD = -1), so a freed block stays in the process and the next
step reuses it without a page fault. The cost is memory: the process keeps its peak heap until it exits.

keep_freed_memory() sets both with mallopt (glibc only; elsewhere, or where the user's own MALLOC_MMAP_MAX_,
MALLOC_TRIM_THRESHOLD_ or GLIBC_TUNABLES malloc settings already decide, it does nothing). shared_utils.pytorch calls it once at import;
DL_KEEP_FREED_MEMORY=0 turns it off.
"""
from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4          # glibc's mallopt parameters (malloc.h)
_STATE: dict[str, bool] = {}


def keep_freed_memory() -> bool:
    """Tell glibc's malloc to serve large blocks from the heap and never trim it (see the module's text).
    Returns whether the setting is in force; called again, it reports what the first call did."""
    if "kept" in _STATE:
        return _STATE["kept"]
    _STATE["kept"] = False
    if (os.environ.get("DL_KEEP_FREED_MEMORY", "1") == "0" or not sys.platform.startswith("linux")
            or {"MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_"} & set(os.environ)
            or "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", "")):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):               # not glibc (musl, for one): nothing to set
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _STATE["kept"] = bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, -1))
    return _STATE["kept"]


def freed_memory_kept() -> bool:
    """Whether keep_freed_memory() is in force in this process (recorded in run summaries)."""
    return _STATE.get("kept", False)
