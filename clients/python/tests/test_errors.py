"""Errors are exceptions with libframering's message."""

import os
import time

import pytest

import framering


def test_no_such_ring(runtime_dir, binaries):
    with pytest.raises(framering.NoSuchRing) as e:
        framering.attach("nothere")
    assert "no such ring" in str(e.value) and "nothere" in str(e.value)
    assert isinstance(e.value, FileNotFoundError) and e.value.name == "FR_ERR_NO_SUCH_RING"


def test_bad_arguments(runtime_dir, binaries):
    with pytest.raises(ValueError):
        framering.attach("../etc")
    with pytest.raises(ValueError):
        framering.attach("x", name="n" * 40)


def test_producer_gone(producer):
    p = producer("gone", "-width", "64", "-height", "48", "-fps", "500")
    with framering.attach("gone") as ring:
        ring.next(timeout=10).release()
        p.kill9()
        with pytest.raises(framering.ProducerGone):
            for frame in ring.frames(timeout=10):
                pass
        assert ring.health().state == "gone"
    with pytest.raises(framering.ProducerGone):  # its socket is left over
        framering.attach("gone")


def test_closed_after_draining(producer):
    p = producer("closed", "-width", "64", "-height", "48", "-fps", "200")
    with framering.attach("closed", lossless=True) as ring:
        first = ring.next(timeout=10)
        first.release()
        summary = p.stop()
        seqs = []
        with pytest.raises(framering.Closed):
            for frame in ring.frames(timeout=10):
                seqs.append(frame.seq)
        # Lossless: every frame published after ours was still delivered.
        assert seqs == list(range(first.seq + 1, summary["published"] + 1))
        assert ring.health().state == "closed"


def test_timeout(producer):
    producer("slow", "-width", "64", "-height", "48", "-fps", "1")
    with framering.attach("slow") as ring:
        ring.next(timeout=10).release()
        t0 = time.monotonic()
        with pytest.raises(framering.Timeout):
            ring.next(timeout=0.05)
        assert time.monotonic() - t0 < 5


def test_closed_ring_object(producer):
    producer("obj", "-width", "64", "-height", "48", "-fps", "100")
    ring = framering.attach("obj")
    kept = ring.next(timeout=10)
    ring.close()  # detaches once the kept frame is released
    with pytest.raises(framering.Closed):
        ring.next(timeout=1)
    assert ring.counters.delivered == 1 and ring.counters.held == 1  # as at close
    assert kept.valid() and kept.array.shape == (48, 64)
    kept.release()
    assert not kept.valid()
    ring.close()  # idempotent
    assert os.path.exists(framering.socket_path("obj"))
