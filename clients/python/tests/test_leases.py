"""The lease rules: arrays are read-only views valid until release; keep()
extends a frame's life; an exception or Ctrl-C inside the loop releases what
the loop holds (checked with `ringctl show -json`); eviction revokes."""

import signal
import time

import numpy as np
import pytest

import framering
from conftest import consumer_of, read_line


def test_arrays_are_read_only(producer):
    producer("ro", "-width", "64", "-height", "48", "-fps", "500")
    with framering.attach("ro") as ring:
        for frame in ring.frames(timeout=10):
            a = frame.array
            with pytest.raises(ValueError):
                a[0, 0] = 1
            with pytest.raises(ValueError):
                a.flags.writeable = True
            with pytest.raises(ValueError):
                np.copyto(a, 0)
            with pytest.raises(ValueError):
                frame.raw[5] = 1
            v = a.view()
            with pytest.raises(ValueError):
                v[:] = 0
            break


def test_use_after_release_is_detected(producer):
    producer("uar", "-width", "64", "-height", "48", "-fps", "1000", "-slots", "4")
    with framering.attach("uar") as ring:
        frame = ring.next(timeout=10)
        a = frame.array
        assert frame.valid()
        frame.release()
        assert not frame.valid()
        with pytest.raises(framering.Released):
            frame.release()
        with pytest.raises(framering.Released):
            frame.array  # noqa: B018 (a fresh view of a released frame is refused)
        # The stale array is still mapped (reading it never crashes), but it
        # is someone else's memory now: after a few frames it is overwritten.
        seq = frame.seq
        deadline = time.monotonic() + 10
        while int.from_bytes(a[0, 8:16].tobytes(), "little") == frame.frame_id and time.monotonic() < deadline:
            time.sleep(0.01)
        assert int.from_bytes(a[0, 8:16].tobytes(), "little") != frame.frame_id, f"slot of {seq} never reused"


def test_exception_in_loop_releases_holds(producer):
    p = producer("exc", "-width", "64", "-height", "48", "-fps", "200")
    with framering.attach("exc", name="exc") as ring:
        kept = None
        with pytest.raises(RuntimeError):
            for n, frame in enumerate(ring.frames(timeout=10)):
                if n == 0:
                    kept = frame.keep()
                if n == 3:
                    raise RuntimeError("inspection failed")
        me = consumer_of(p.show(), __import__("os").getpid())
        assert me["held"] == 1 and len(me["held_slots"]) == 1, me  # only the kept frame
        assert ring.counters.held == 1
        kept.release()
        me = consumer_of(p.show(), __import__("os").getpid())
        assert me["held"] == 0 and me["held_slots"] == [], me
    show = p.show()
    assert consumer_of(show, __import__("os").getpid()) is None
    assert show["reclaims"] == 0 and show["detaches"] == 1, "a clean detach (bye), not a reclaim"


def test_keep_gc_and_with(producer):
    producer("keep", "-width", "64", "-height", "48", "-fps", "500")
    with framering.attach("keep") as ring:
        kept = []
        for frame in ring.frames(timeout=10):
            kept.append(frame.keep())
            if len(kept) == 3:
                break
        assert ring.counters.held == 3
        arr = kept[0].array
        del kept[0]
        assert ring.counters.held == 3, "an array keeps its frame held"
        del arr
        assert ring.counters.held == 2, "the last reference gone: released"
        with kept.pop() as f:
            assert f.valid()
        assert ring.counters.held == 1 and not f.valid()
        kept.clear()
        del frame
        assert ring.counters.held == 0


def test_hold_quota(producer):
    producer("quota", "-width", "64", "-height", "48", "-fps", "500", "-slots", "8")
    with framering.attach("quota") as ring:
        kept = []
        with pytest.raises(framering.TooManyHeld):
            for frame in ring.frames(timeout=10):
                kept.append(frame.keep())
        assert len(kept) == ring.hold_quota
        kept.clear()
        del frame  # the loop variable is a reference too
        assert ring.counters.held == 0


CHILD = r"""
import os, sys, time, framering
with framering.attach("sig", name="sigint", lossless={lossless}) as ring:
    try:
        for n, frame in enumerate(ring.frames()):
            if n == 2:
                print("looping", flush=True)
            {body}
    except KeyboardInterrupt:
        print("interrupted held=%d" % ring.counters.held, flush=True)
        sys.stdin.readline()   # the test looks at the ring now
print("detached", flush=True)
sys.stdin.readline()  # exit once the producer saw the connection end (and the bye)
"""


@pytest.mark.parametrize("where", ["busy", "waiting"])
def test_ctrl_c_releases_holds(producer, python_child, where):
    """SIGINT while the loop body runs (busy) or while the library waits for
    the next frame (a slow producer): KeyboardInterrupt, and the frame the
    loop held is released — ringctl shows no slot held by the consumer."""
    fps = "500" if where == "busy" else "2"
    p = producer("sig", "-width", "64", "-height", "48", "-fps", fps)
    body = "time.sleep(0.01); frame.array.sum()" if where == "busy" else "pass"
    child = python_child(CHILD.format(lossless=False, body=body))
    read_line(child, "looping")
    if where == "waiting":
        time.sleep(0.2)  # at 2 fps, asleep in fr_next
    t0 = time.monotonic()
    child.send_signal(signal.SIGINT)
    line = read_line(child, "interrupted")
    took = time.monotonic() - t0
    assert line == "interrupted held=0", line
    me = consumer_of(p.show(), child.pid)
    assert me is not None and me["held"] == 0 and me["held_slots"] == [], me
    assert all(f"{me['entry']}" not in " ".join(s["held_by"]) for s in p.show()["slot_list"])
    child.stdin.write("\n")
    child.stdin.flush()
    read_line(child, "detached")
    deadline = time.monotonic() + 30
    while consumer_of(show := p.show(), child.pid) is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    # A detach with a bye, not a reclaim. (The child stays alive until the
    # producer saw its connection end: the Go producer counts a reclaim when
    # it notices the process exit before reading the bye.)
    assert consumer_of(show, child.pid) is None and show["reclaims"] == 0, show
    child.stdin.write("\n")
    child.stdin.flush()
    assert child.wait(timeout=30) == 0
    print(f"KeyboardInterrupt after {took * 1000:.0f} ms ({where})")


def test_evicted_and_revoked(producer):
    """A lossless consumer that stops reading is evicted (its cursor pinned
    the ring): the frame it kept is revoked, and the loop raises Evicted."""
    p = producer("evict", "-width", "64", "-height", "48", "-fps", "500", "-slots", "8", "-evict-after", "100ms")
    with framering.attach("evict", lossless=True) as ring:
        frames = ring.frames(timeout=10)
        frame = next(frames).keep()
        assert frame.valid()
        deadline = time.monotonic() + 10
        while not ring.health().evicted and time.monotonic() < deadline:
            time.sleep(0.01)
        assert ring.health().evicted
        with pytest.raises(framering.Evicted):
            next(frames)
        # The producer ignores our holds now: once it reuses the slot, the
        # kept frame is no longer valid, and its release says so.
        while frame.valid() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not frame.valid()
        with pytest.raises(framering.RevokedOverwritten):
            frame.release()
        assert ring.counters.revoked == 1
        me = consumer_of(p.show(), __import__("os").getpid())
        assert me["state"] == "evicted" and me["revoked_seen"] == 1, me
