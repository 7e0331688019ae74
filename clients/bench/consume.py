#!/usr/bin/python3
"""The Python consumer of the clients benchmark (clients/bench): attach
lossless, iterate ring.frames() for SECONDS, and either only take each frame
("lease": the per-frame overhead of the package) or also read every byte
("sum": a.view(np.uint64).sum(), numpy's 64-bit word sum). Prints one JSON
line.

    consume.py SOCKET SECONDS lease|sum
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))

import numpy as np  # noqa: E402

import framering  # noqa: E402


def main():
    socket, secs, mode = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    do_sum = mode == "sum"
    frames = nbytes = total = 0
    with framering.attach(socket=socket, name="frbench-py", lossless=True) as ring:
        it = ring.frames()
        warm = time.monotonic() + 0.2
        for frame in it:
            if do_sum:
                total += int(frame.array.view(np.uint64).sum())
            if time.monotonic() >= warm:
                break
        t0, c0 = time.monotonic(), time.process_time()
        for frame in it:
            if do_sum:
                total += int(frame.array.view(np.uint64).sum())
            frames += 1
            nbytes += frame.length
            if frames & 63 == 0 and time.monotonic() - t0 >= secs:
                break
        wall, cpu = time.monotonic() - t0, time.process_time() - c0
    print(json.dumps({"lang": "Python", "frames": frames, "seconds": wall, "cpu_seconds": cpu, "bytes": nbytes,
                      "sum": total & ((1 << 64) - 1)}))


if __name__ == "__main__":
    main()
