"""Keep the export's resident memory flat by handing memory the allocators keep back to the OS.

A streaming export allocates and frees the same few megabytes per batch. Allocators keep freed memory
for reuse, and glibc's heap only shrinks from its top, so the RSS would drift above what is in use;
:func:`release_free_memory`, called after each batch and each upload, returns it, at a cost small
next to a batch. On a libc without ``malloc_trim`` only Arrow's pool is released.

Arrow's allocator itself is chosen in ``airflow_rs2gcs/engine/__init__.py`` (it must happen before
pyarrow is first imported).
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable

import pyarrow as pa


def _load_malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_MALLOC_TRIM = _load_malloc_trim()


def release_free_memory() -> None:
    """Return free memory held by Arrow's pool and by glibc's malloc arenas to the OS."""
    pa.default_memory_pool().release_unused()
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)
