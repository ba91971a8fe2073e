"""glibc malloc settings for a long-running operator with many connections and threads.

Two glibc defaults cost the operator resident memory it never gives back
(benchmarks/README.md, "Memory at adoption"):

- the mmap threshold adjusts itself upwards: once a 256 KiB block (asyncio's per-connection TLS
  read buffer) is freed, later blocks of that size come from the heap instead of their own
  mapping, and a heap keeps its free memory after a burst of connections closes;
- every thread that allocates may get an arena of its own (up to 8 per core), each keeping its
  own free memory.

`tune()` fixes the threshold (which also turns its adjustment off) and caps the arenas. It is a
no-op off glibc, and when the process's environment already sets malloc's tunables
(`MALLOC_ARENA_MAX`, `MALLOC_MMAP_THRESHOLD_`, or a `glibc.malloc.*` entry of `GLIBC_TUNABLES`):
an operator's own settings win. Other glibc tunables (`glibc.rtld.*`, `glibc.pthread.*`) do not
count.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
from collections.abc import Mapping

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # glibc malloc.h
M_ARENA_MAX = -8

MMAP_THRESHOLD = 128 * 1024  # glibc's initial value, kept fixed
ARENA_MAX = 2

MALLOC_VARIABLES = ("MALLOC_ARENA_MAX", "MALLOC_MMAP_THRESHOLD_")
OWN_SETTINGS = ("GLIBC_TUNABLES", *MALLOC_VARIABLES)  # every variable `own_setting` reads


def own_setting(environ: Mapping[str, str]) -> str | None:
    """The environment variable that sets malloc's tunables itself, if any."""
    for name in MALLOC_VARIABLES:
        if name in environ:
            return name
    tunables = environ.get("GLIBC_TUNABLES", "")
    if any(entry.strip().startswith("glibc.malloc.") for entry in tunables.split(":")):
        return "GLIBC_TUNABLES"
    return None


def tune(environ: Mapping[str, str] = os.environ) -> bool:
    """Apply the settings above; True when glibc took them."""
    own = own_setting(environ)
    if own is not None:
        log.info("malloc tunables set by %s: the operator's own malloc settings are not applied", own)
        return False
    libc = _glibc()
    if libc is None:
        return False
    done = bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(libc.mallopt(M_ARENA_MAX, ARENA_MAX))
    if not done:
        log.warning("glibc refused the malloc settings; running with its defaults")
    return done


def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version  # noqa: B018 - only glibc has it
    except (OSError, AttributeError):
        return None
    return libc
