"""A child ``python -m l4mon ARGS...`` that reports its own peak memory.

``wait4``'s ``ru_maxrss`` is no good for this: Linux carries the parent's high-water mark into a
vforked child at exec, so a benchmark that generated its input first would report the
generator's peak. The child writes its own ``VmHWM`` (KiB) to ``$L4MON_BENCH_HWM`` at exit,
however it exits. Run it as ``[sys.executable, "-c", CHILD, "replay", ...]``.
"""

from __future__ import annotations

from typing import Final

#: ``python -m l4mon ARGS...`` that writes its own peak RSS (VmHWM, KiB) to $L4MON_BENCH_HWM
#: at exit, however it exits.
CHILD: Final = """
import atexit, os, re, runpy, sys
def hwm():
    status = open("/proc/self/status").read()
    open(os.environ["L4MON_BENCH_HWM"], "w").write(re.search(r"VmHWM:\\s+(\\d+)", status)[1])
atexit.register(hwm)
sys.argv = ["l4mon", *sys.argv[1:]]
runpy.run_module("l4mon", run_name="__main__", alter_sys=True)
"""
