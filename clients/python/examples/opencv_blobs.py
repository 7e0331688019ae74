#!/usr/bin/python3
"""Find bright and dark blobs in every frame of a ring with OpenCV, in place.

The frame's array is a zero-copy, read-only view of the ring's shared
memory; OpenCV reads it as it is (cv2.threshold writes its result to a new
array). The frame stays held (the producer will not overwrite it) until
the loop moves on.

    producer -ring line1 -source synthetic -defects &
    /usr/bin/python3 clients/python/examples/opencv_blobs.py line1 -n 100
"""
import argparse

import cv2
import numpy as np

import framering


def blobs(gray, min_area):
    """Connected regions at least min_area pixels large, bright (>= 200) or
    dark (<= 10), of an 8-bit gray image."""
    found = []
    for bright, (lo, hi) in ((True, (200, 255)), (False, (0, 10))):
        mask = cv2.inRange(gray, lo, hi)
        n, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        for i in range(1, n):
            x, y, w, h, area = stats[i]
            if area >= min_area:
                found.append((int(x), int(y), int(w), int(h), bool(bright)))
    return found


def to_gray8(frame):
    """An 8-bit gray image of a frame: the array itself for 8-bit mono and
    Bayer frames (zero-copy), a conversion otherwise."""
    a = frame.array
    if frame.format_name in ("BGR8", "RGB8"):
        return cv2.cvtColor(a, cv2.COLOR_BGR2GRAY if frame.format_name == "BGR8" else cv2.COLOR_RGB2GRAY)
    if a.dtype == np.uint16:  # n-bit samples: their top 8 bits
        return (a >> (frame.sample_bits - 8)).astype(np.uint8)
    return a


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("ring", nargs="?", default="default")
    ap.add_argument("-n", type=int, default=0, help="frames to inspect (0: until the ring ends)")
    ap.add_argument("-min-area", type=int, default=16)
    args = ap.parse_args()
    with framering.attach(args.ring, name="opencv_blobs") as ring:
        for n, frame in enumerate(ring.frames(), 1):
            found = blobs(to_gray8(frame), args.min_area)
            print(f"seq={frame.seq} frame_id={frame.frame_id} blobs={len(found)} "
                  + " ".join(f"{'bright' if b else 'dark'}@{x},{y}+{w}x{h}" for x, y, w, h, b in found), flush=True)
            if n == args.n:
                break


if __name__ == "__main__":
    main()
