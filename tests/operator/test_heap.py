"""The operator's malloc settings (controller/operator/heap.py): large blocks freed after a burst
of connections go back to the OS, even with long-lived blocks allocated between them.

Each case runs in a fresh interpreter: malloc's settings are process-wide and one-way.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

from controller.operator import heap

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")

# 300 buffers of asyncio's TLS read size (256 KiB), each followed by a long-lived 1 KiB block
# (past pymalloc's 512 B, so from malloc too); then the buffers are dropped, as when the
# connections of an adoption burst close.
BURST = r"""
import json, sys
from controller.operator import heap
tuned = heap.tune(dict()) if sys.argv[1] == "tuned" else False
def rss():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
bytearray(256 * 1024)  # one connection came and went: by default glibc now serves this size from the heap
before = rss()
buffers, kept = [], []
for _ in range(300):
    buffers.append(bytearray(256 * 1024))
    kept.append(bytes(1024))
peak = rss()
del buffers
print(json.dumps({"tuned": tuned, "grown_kib": peak - before, "kept_kib": rss() - before}))
"""


def burst(mode: str) -> dict[str, int]:
    env = {k: v for k, v in os.environ.items() if k not in heap.OWN_SETTINGS}
    out = subprocess.run([sys.executable, "-c", BURST, mode], capture_output=True, text=True, check=True, env=env, timeout=60)
    return json.loads(out.stdout)


def test_tuned_malloc_returns_a_burst_of_large_buffers():
    tuned, default = burst("tuned"), burst("default")
    assert tuned["tuned"] is True
    assert tuned["grown_kib"] > 70_000 and default["grown_kib"] > 70_000  # the burst was resident
    assert tuned["kept_kib"] < 5_000, tuned
    # glibc's own defaults keep most of it: what the setting is for.
    assert default["kept_kib"] > 50_000, default


def test_an_operators_own_malloc_settings_win():
    assert heap.tune({"MALLOC_ARENA_MAX": "4"}) is False
    assert heap.tune({"GLIBC_TUNABLES": "glibc.malloc.arena_max=4"}) is False
    assert heap.own_setting({"GLIBC_TUNABLES": "glibc.rtld.nns=2:glibc.malloc.trim_threshold=0"}) == "GLIBC_TUNABLES"


def test_tunables_of_other_glibc_parts_leave_the_malloc_settings_on():
    assert heap.own_setting({"GLIBC_TUNABLES": "glibc.rtld.nns=2:glibc.pthread.rseq=0"}) is None
    assert heap.own_setting({"GLIBC_TUNABLES": ""}) is None
    assert heap.own_setting({"MALLOC_MMAP_THRESHOLD_": "65536"}) == "MALLOC_MMAP_THRESHOLD_"
