"""A Python consumer and a Go consumer (ringbuf) on the same ring receive
identical frames; OpenCV takes the arrays as they are."""

import hashlib
import json
import os
import subprocess

import cv2  # Debian's python3-opencv (scripts/setup.sh installs it)
import numpy as np
import pytest

import framering
from pattern import check_pixels, check_stamp


def test_python_and_go_receive_identical_frames(producer, binaries):
    p = producer("both", "-format", "Mono12", "-width", "96", "-height", "64", "-fps", "300", "-slots", "16")
    go = subprocess.Popen([os.path.join(binaries, "goconsumer"), "-socket", p.socket, "-n", "150", "-lossless",
                           "-start", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert json.loads(go.stdout.readline()) == {"attached": True}
    mine = {}
    with framering.attach("both", name="python", lossless=True, start=1) as ring:
        for n, frame in enumerate(ring.frames(timeout=10)):
            check_stamp(frame)
            check_pixels(frame)
            mine[frame.seq] = (frame.frame_id, frame.width, frame.height, frame.stride, frame.format, frame.length,
                               frame.flags, frame.timestamp_ns, hashlib.sha256(frame.raw).hexdigest())
            if n == 149:
                break
    out, err = go.communicate(timeout=60)
    assert go.returncode == 0, err
    theirs = {}
    for line in out.splitlines():
        r = json.loads(line)
        theirs[r["seq"]] = (r["frame_id"], r["width"], r["height"], r["stride"], r["format"], r["length"], r["flags"],
                            r["timestamp"], r["sha256"])
    common = sorted(set(mine) & set(theirs))
    assert len(common) >= 100, f"only {len(common)} frames in common"
    assert common == list(range(common[0], common[-1] + 1))
    for seq in common:
        assert mine[seq] == theirs[seq], f"frame {seq}: Python {mine[seq]}, Go {theirs[seq]}"


@pytest.mark.parametrize("fmt", ["Mono8", "Mono16", "BGR8", "RGB8", "YUV422_8", "YUV422_8_UYVY", "BayerRG8"])
def test_opencv_takes_the_arrays(producer, fmt):
    producer("cv", "-format", fmt, "-width", "64", "-height", "48", "-fps", "500")
    with framering.attach("cv") as ring:
        for frame in ring.frames(timeout=10):
            a = frame.array  # zero-copy and read-only: OpenCV reads it in place
            assert not a.flags.writeable
            mean = cv2.mean(a)
            if a.ndim == 2:
                assert mean[0] == pytest.approx(a.mean())
                blur = cv2.GaussianBlur(a, (5, 5), 0)
                assert blur.shape == a.shape and blur.dtype == a.dtype
            if fmt == "Mono8":
                _, mask = cv2.threshold(a, 100, 255, cv2.THRESH_BINARY)
                assert int(np.count_nonzero(mask)) == int(np.count_nonzero(a > 100))
            if fmt in ("BGR8", "RGB8"):
                gray = cv2.cvtColor(a, cv2.COLOR_BGR2GRAY if fmt == "BGR8" else cv2.COLOR_RGB2GRAY)
                b, g, r = (a[..., 0], a[..., 1], a[..., 2]) if fmt == "BGR8" else (a[..., 2], a[..., 1], a[..., 0])
                want = 0.299 * r + 0.587 * g + 0.114 * b
                assert np.abs(gray[1:].astype(float) - want[1:]).max() <= 1
            if fmt.startswith("YUV422"):
                code = cv2.COLOR_YUV2BGR_YUYV if fmt == "YUV422_8" else cv2.COLOR_YUV2BGR_UYVY
                bgr = cv2.cvtColor(a, code)
                assert bgr.shape == (48, 64, 3)
                # OpenCV reads the (h, w, 2) view as the packed 4:2:2 it is:
                # the luma it extracts is every pixel's Y sample.
                gray = cv2.cvtColor(a, cv2.COLOR_YUV2GRAY_YUYV if fmt == "YUV422_8" else cv2.COLOR_YUV2GRAY_UYVY)
                y = a[..., 0] if fmt == "YUV422_8" else a[..., 1]
                assert np.array_equal(gray, y)
            if fmt == "BayerRG8":
                bgr = cv2.cvtColor(a, cv2.COLOR_BayerRG2BGR)
                assert bgr.shape == (48, 64, 3)
            check_stamp(frame)
            check_pixels(frame)
            break


def test_opencv_example_finds_the_injected_defects(producer):
    """examples/opencv_blobs.py, run as a program: on the synthetic source's
    frames with defects it finds exactly the defects of the pattern
    (frame f carries f mod 3 of them, docs/LAYOUT.md Appendix A)."""
    import sys
    producer("blobs", "-width", "320", "-height", "240", "-fps", "100", "-defects")
    example = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "opencv_blobs.py")
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(example)))
    out = subprocess.run([sys.executable, example, "blobs", "-n", "20"], capture_output=True, text=True, env=env,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 20
    for line in lines:
        f = dict(kv.split("=") for kv in line.split()[:3])
        assert int(f["blobs"]) == int(f["frame_id"]) % 3, line
