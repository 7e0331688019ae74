"""framering.latency_thread gives the calling thread the short scheduler
slice (read back from the kernel with sched_getattr), keeps its policy and
nice value, and restores the default; other threads keep theirs."""

import ctypes
import os
import platform
import threading

import framering

# sched_getattr(2): Python's os module has no wrapper. libframering runs on
# amd64 and arm64 only (clients/c/src/internal.h).
SYS_SCHED_GETATTR = {"x86_64": 315, "aarch64": 275}[platform.machine()]
_libc = ctypes.CDLL(None, use_errno=True)


class SchedAttr(ctypes.Structure):
    """struct sched_attr, SCHED_ATTR_SIZE_VER0."""
    _fields_ = [("size", ctypes.c_uint32), ("policy", ctypes.c_uint32), ("flags", ctypes.c_uint64),
                ("nice", ctypes.c_int32), ("priority", ctypes.c_uint32), ("runtime", ctypes.c_uint64),
                ("deadline", ctypes.c_uint64), ("period", ctypes.c_uint64)]


def sched_now():
    """The calling thread's scheduling attributes."""
    a = SchedAttr()
    if _libc.syscall(ctypes.c_long(SYS_SCHED_GETATTR), ctypes.c_int(0), ctypes.byref(a),
                     ctypes.c_uint(ctypes.sizeof(a)), ctypes.c_uint(0)) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return a


def on_own_thread(fn):
    """Run fn on a new thread (whose nice value and slice die with it) and
    re-raise what it raised."""
    out = {}

    def run():
        try:
            out["result"] = fn()
        except BaseException as e:  # noqa: BLE001 - handed to the test thread
            out["error"] = e

    t = threading.Thread(target=run)
    t.start()
    t.join(30)
    assert not t.is_alive(), "the thread hangs"
    if "error" in out:
        raise out["error"]
    return out["result"]


def test_latency_thread_sets_keeps_and_restores():
    mine = sched_now().runtime

    def body():
        os.setpriority(os.PRIO_PROCESS, 0, 3)  # this thread only (Linux)
        before = sched_now()
        assert (before.policy, before.nice) == (os.SCHED_OTHER, 3)
        framering.latency_thread()
        a = sched_now()
        # Linux 6.12 and later report the slice; this kernel is one.
        assert a.runtime == framering.LATENCY_SLICE_NS == 100000
        assert (a.policy, a.nice) == (os.SCHED_OTHER, 3)
        assert os.getpriority(os.PRIO_PROCESS, 0) == 3
        framering.latency_thread(slice_ns=2_500_000)
        assert sched_now().runtime == 2_500_000
        framering.latency_thread(slice_ns=-1)
        a = sched_now()
        assert a.runtime == before.runtime != framering.LATENCY_SLICE_NS
        assert (a.policy, a.nice) == (os.SCHED_OTHER, 3)
        # SCHED_BATCH is kept too.
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
        framering.latency_thread()
        a = sched_now()
        assert (a.policy, a.nice, a.runtime) == (os.SCHED_BATCH, 3, framering.LATENCY_SLICE_NS)

    on_own_thread(body)
    assert sched_now().runtime == mine, "the test thread's slice changed"


def test_latency_thread_is_inherited_by_new_threads():
    def body():
        framering.latency_thread()
        return on_own_thread(lambda: sched_now().runtime)

    assert on_own_thread(body) == framering.LATENCY_SLICE_NS
