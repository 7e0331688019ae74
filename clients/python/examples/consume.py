#!/usr/bin/python3
"""Print each frame of a ring with its mean: the smallest framering consumer.

    /usr/bin/python3 clients/python/examples/consume.py line1
"""
import sys

import framering

ring_name = sys.argv[1] if len(sys.argv) > 1 else "default"
with framering.attach(ring_name, name="consume.py") as ring:
    for frame in ring.frames():
        img = frame.array  # a read-only numpy view of the slot: no copy
        print(f"seq={frame.seq} {frame.width}x{frame.height} {frame.format_name} mean={img.mean():.1f}")
