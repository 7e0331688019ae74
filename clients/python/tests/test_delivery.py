"""Frames from the real Go producer (cmd/producer, synthetic source) through
numpy: every pixel format's array shape, dtype and strides, the pattern
checked on every frame (stamp, Sum64 checksum and each pixel), lossless and
lossy delivery accounted for, observer and copy modes."""

import numpy as np
import pytest

import framering
from pattern import check_pixels, check_stamp

ALL_FORMATS = sorted(framering.FORMATS)


@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_every_format_lossless(producer, fmt):
    p = producer("fmt", "-format", fmt, "-width", "64", "-height", "48", "-fps", "1000", "-slots", "8")
    with framering.attach("fmt", name="pytest", lossless=True) as ring:
        last = None
        for n, frame in enumerate(ring.frames(timeout=10)):
            check_stamp(frame)
            check_pixels(frame)
            a = frame.array
            assert not a.flags.writeable and not a.flags.owndata
            assert frame.format_name == fmt and frame.flags & 1  # the pattern flag
            if last is not None:
                assert frame.seq == last + 1, "lossless: every sequence number in order"
            last = frame.seq
            if n == 24:
                break
        c = ring.counters
        assert c.delivered == 25 and c.skipped == 0 and c.missed == 0 and c.held == 0
    p.stop()


@pytest.mark.parametrize("fmt,width,stride", [("Mono8", 60, 64), ("Mono16", 50, 128), ("RGB8", 21, 80),
                                              ("Mono12p", 33, 64), ("YUV422_8", 30, 64)])
def test_padded_rows(producer, fmt, width, stride):
    """Row padding is honoured through numpy strides, without a copy."""
    producer("pad", "-format", fmt, "-width", str(width), "-height", "16", "-stride", str(stride), "-fps", "1000")
    with framering.attach("pad", lossless=True) as ring:
        for n, frame in enumerate(ring.frames(timeout=10)):
            assert frame.stride == stride and frame.array.strides[0] == stride
            check_stamp(frame)
            check_pixels(frame)
            if n == 9:
                break


def test_lossy_accounts_for_every_frame(producer):
    """A slow lossy consumer gets the newest frame each time: delivered +
    skipped + missed covers every sequence number it passed."""
    producer("lossy", "-width", "64", "-height", "48", "-fps", "1000")
    with framering.attach("lossy", name="slow") as ring:
        start = ring.counters.cursor
        last = 0
        for n, frame in enumerate(ring.frames(timeout=10)):
            check_stamp(frame)
            check_pixels(frame)
            assert frame.seq > last
            last = frame.seq
            frame.array.sum()
            import time
            time.sleep(0.004)
            if n == 40:
                break
        c = ring.counters
        assert c.skipped > 0, "a consumer 4x slower than the producer skipped nothing"
        assert c.delivered + c.skipped + c.missed == c.cursor - start
        assert c.cursor == last + 1


def test_observer_peeks_and_validates(producer):
    producer("obs", "-width", "64", "-height", "48", "-fps", "500")
    with framering.attach("obs", observer=True) as ring:
        assert ring.entry == -1
        good = 0
        for n, frame in enumerate(ring.frames(timeout=10)):
            a = frame.array
            total = int(a.sum())
            if frame.valid():  # what was read is the frame
                check_stamp(frame)
                good += 1
                assert total == int(frame.array.sum())
            if n == 30:
                break
        assert good > 0
        with pytest.raises(framering.ObserverOnly):
            ring.borrow(ring.published)


@pytest.mark.parametrize("observer", [False, True])
def test_copy_mode_private_arrays(producer, observer):
    producer("copy", "-format", "RGB8", "-width", "64", "-height", "48", "-fps", "500")
    with framering.attach("copy", copy=True, observer=observer) as ring:
        kept = []
        for n, frame in enumerate(ring.frames(timeout=10)):
            a = frame.array
            assert a.flags.writeable and a.shape == (48, 64, 3)
            assert ring.counters.held == 0, "a copied frame holds nothing"
            check_stamp(frame)
            check_pixels(frame)
            kept.append((frame, a.copy()))
            a[0, 0] = 0  # ours to write
            if n == 10:
                break
        for frame, before in kept:
            assert frame.valid()
            assert np.array_equal(frame.array[1:], before[1:]), "a copied frame changed after its loop step"


def test_borrow_and_read(producer):
    producer("rand", "-width", "64", "-height", "48", "-fps", "500")
    with framering.attach("rand") as ring:
        first = ring.next(timeout=10)
        seq = first.seq
        first.release()
        with ring.borrow(ring.published) as f:
            check_stamp(f)
        c = ring.read(ring.published)
        check_stamp(c)
        assert c.array.flags.writeable
        with pytest.raises(framering.NotPublished):
            ring.borrow(ring.published + 1000)
        assert seq >= 1
