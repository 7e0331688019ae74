"""The test pattern of docs/LAYOUT.md Appendix A, computed with numpy, to
check the frames the producer's synthetic source publishes through the
arrays framering hands out."""

import numpy as np

import framering

MAGIC = 0x54505246
MUL = 0x9E3779B97F4A7C15
FIN = 0xFF51AFD7ED558CCD
M64 = (1 << 64) - 1

RED, GREEN, BLUE = 0, 1, 2
CFA = {"BayerGR": (GREEN, RED, BLUE, GREEN), "BayerRG": (RED, GREEN, GREEN, BLUE),
       "BayerGB": (GREEN, BLUE, RED, GREEN), "BayerBG": (BLUE, GREEN, GREEN, RED)}
SAMPLE_BITS = {"Mono10": 10, "Mono12": 12, "Mono16": 16, "Mono10p": 10, "Mono12p": 12, "Mono10Packed": 10,
               "Mono12Packed": 12}


def sum64(seed, b):
    """Appendix A's Sum64 over the bytes b (a numpy uint8 array)."""
    n = len(b)
    h = (seed * MUL ^ n) & M64
    full = n // 8 * 8
    words = np.frombuffer(b[:full].tobytes(), "<u8").tolist()
    if full < n:
        tail = bytes(b[full:]) + bytes(8 - (n - full))
        words.append(int.from_bytes(tail, "little"))
    for w in words:
        x = h ^ w
        h = (((x << 27) | (x >> 37)) & M64) * MUL & M64
    h ^= h >> 33
    h = h * FIN & M64
    h ^= h >> 33
    return h


def check_stamp(frame):
    """The stamp's fields equal the descriptor's and its checksum the bytes'."""
    raw = frame.raw
    head = raw[:32].tobytes()
    assert int.from_bytes(head[0:4], "little") == MAGIC, "no stamp"
    assert int.from_bytes(head[4:8], "little") == frame.format
    assert int.from_bytes(head[8:16], "little") == frame.frame_id
    assert int.from_bytes(head[16:20], "little") == frame.width
    assert int.from_bytes(head[20:24], "little") == frame.height
    assert frame.length == frame.stride * frame.height
    assert sum64(frame.frame_id, raw[32:]) == int.from_bytes(head[24:32], "little"), f"checksum of frame {frame.seq}"


def E(u, n):
    """The 8-bit value u with its bits replicated to n bits."""
    return (u << (n - 8)) | (u >> (16 - n))


def expected(name, w, h, f):
    """What frame.array (or framering.unpack for packed formats) holds for
    frame id f of a w x h frame in format name, without defects."""
    x = np.arange(w, dtype=np.int64)[None, :]
    y = np.arange(h, dtype=np.int64)[:, None]
    v = 16 + (x + 2 * y + (3 * f) % 128) % 128
    if name == "Mono8":
        return v.astype(np.uint8)
    if name in SAMPLE_BITS:
        return E(v, SAMPLE_BITS[name]).astype(np.uint16)
    if name[:7] in CFA:
        cfa = np.array(CFA[name[:7]])
        c = cfa[(y % 2) * 2 + (x % 2)]
        bits = 8 if name.endswith("8") else 16
        return E(v + 16 * c, bits).astype(np.uint8 if bits == 8 else np.uint16)
    if name in ("RGB8", "BGR8"):
        rgb = np.stack([v, v + 32, v + 64], axis=-1)
        return (rgb if name == "RGB8" else rgb[..., ::-1]).astype(np.uint8)
    if name in ("YUV422_8", "YUV422_8_UYVY"):
        out = np.empty((h, w, 2), np.int64)
        v0 = v[:, 0::2]
        y0, y1, u, vv = v0, v[:, 1::2], v0 + 32, v0 + 64
        if name == "YUV422_8":   # Y0 U Y1 V: pixel pairs (Y0,U) (Y1,V)
            out[:, 0::2, 0], out[:, 0::2, 1], out[:, 1::2, 0], out[:, 1::2, 1] = y0, u, y1, vv
        else:                    # U Y0 V Y1: (U,Y0) (V,Y1)
            out[:, 0::2, 0], out[:, 0::2, 1], out[:, 1::2, 0], out[:, 1::2, 1] = u, y0, vv, y1
        return out.astype(np.uint8)
    raise ValueError(name)


def check_pixels(frame):
    """Every pixel of rows 1.. is the pattern's (row 0 carries the stamp,
    which check_stamp verifies with the rest of the bytes)."""
    name = frame.format_name
    got = framering.unpack(frame) if name in ("Mono10p", "Mono12p", "Mono10Packed", "Mono12Packed") else frame.array
    want = expected(name, frame.width, frame.height, frame.frame_id)
    assert got.shape == want.shape and got.dtype == want.dtype, (name, got.shape, got.dtype, want.shape, want.dtype)
    assert np.array_equal(got[1:], want[1:]), f"{name} frame {frame.seq}: pixels differ from the pattern"
