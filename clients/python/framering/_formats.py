"""Pixel formats as numpy sees them.

The formats are the project's table (frame/format.go; docs/LAYOUT.md
Appendix A), identified by their GenICam PFNC codes. Each maps to the numpy
view Frame.array gives of a frame's bytes, zero-copy:

=============================================  ==========================  =======================
format                                         Frame.array                 notes
=============================================  ==========================  =======================
Mono8, BayerGR8/RG8/GB8/BG8                    (h, w) uint8                Bayer: the raw mosaic
Mono10, Mono12, Mono16, BayerGR16/RG16/GB16/   (h, w) uint16 (<u2)         n-bit samples in the low
BayerBG16                                                                  bits (Mono10: 0..1023)
RGB8                                           (h, w, 3) uint8             R, G, B
BGR8                                           (h, w, 3) uint8             B, G, R (OpenCV's order)
YUV422_8 (Y0 U Y1 V), YUV422_8_UYVY            (h, w, 2) uint8             per pixel: its Y and its
(U Y0 V Y1)                                                                pair's U or V (YUYV), or
                                                                           U/V then Y (UYVY): what
                                                                           cv2.cvtColor's
                                                                           COLOR_YUV2BGR_YUYV /
                                                                           _UYVY take
Mono10p, Mono12p (PFNC LSB-first packing),     (h, row_bytes) uint8        the packed bytes of each
Mono10Packed, Mono12Packed (GigE Vision)                                   row; framering.unpack()
                                                                           gives (h, w) uint16
any other code                                 (length,) uint8             the raw payload
=============================================  ==========================  =======================

Rows are `stride` bytes apart (numpy strides), so padded rows are
honoured without a copy; a view is made only if the frame's declared
geometry fits in its `length` (else Frame.array raises FormatError and
Frame.raw still gives the bytes).
"""

import numpy as np

# Kinds of numpy view.
MONO8, U16, RGB, YUV422, PACKED = "mono8", "u16", "rgb", "yuv422", "packed"

# code -> (name, view, bits per pixel in memory, significant bits per sample)
FORMATS = {
    0x01080001: ("Mono8", MONO8, 8, 8),
    0x01100003: ("Mono10", U16, 16, 10),
    0x01100005: ("Mono12", U16, 16, 12),
    0x01100007: ("Mono16", U16, 16, 16),
    0x010A0046: ("Mono10p", PACKED, 10, 10),
    0x010C0047: ("Mono12p", PACKED, 12, 12),
    0x010C0004: ("Mono10Packed", PACKED, 12, 10),
    0x010C0006: ("Mono12Packed", PACKED, 12, 12),
    0x01080008: ("BayerGR8", MONO8, 8, 8),
    0x01080009: ("BayerRG8", MONO8, 8, 8),
    0x0108000A: ("BayerGB8", MONO8, 8, 8),
    0x0108000B: ("BayerBG8", MONO8, 8, 8),
    0x0110002E: ("BayerGR16", U16, 16, 16),
    0x0110002F: ("BayerRG16", U16, 16, 16),
    0x01100030: ("BayerGB16", U16, 16, 16),
    0x01100031: ("BayerBG16", U16, 16, 16),
    0x02180014: ("RGB8", RGB, 24, 8),
    0x02180015: ("BGR8", RGB, 24, 8),
    0x02100032: ("YUV422_8", YUV422, 16, 8),
    0x0210001F: ("YUV422_8_UYVY", YUV422, 16, 8),
}

BY_NAME = {v[0]: k for k, v in FORMATS.items()}


def name(code):
    """The PFNC name of a format code, or "0x%08X" for one not in the table."""
    f = FORMATS.get(code)
    return f[0] if f else f"0x{code:08X}"


def sample_bits(code):
    """Significant bits of one sample of the format, or None."""
    f = FORMATS.get(code)
    return f[3] if f else None


def row_bytes(code, width):
    """Bytes one row of width pixels occupies (ceil(width*B/8)); None for an
    unknown format."""
    f = FORMATS.get(code)
    return None if f is None else (width * f[2] + 7) // 8


def layout(code, width, height, stride, length):
    """The numpy view of a frame: (shape, typestr, strides), or a reason
    string when its geometry does not fit its length."""
    f = FORMATS.get(code)
    if f is None:
        return (length,), "|u1", (1,)
    view = f[1]
    if width == 0 or height == 0:
        return f"{f[0]} frame of {width}x{height} pixels"
    rb = (width * f[2] + 7) // 8
    if stride < rb or stride * (height - 1) + rb > length:
        return f"{f[0]} {width}x{height} with stride {stride} needs {stride * (height - 1) + rb} bytes, the frame has {length}"
    if view == MONO8:
        return (height, width), "|u1", (stride, 1)
    if view == U16:
        return (height, width), "<u2", (stride, 2)
    if view == RGB:
        return (height, width, 3), "|u1", (stride, 3, 1)
    if view == YUV422:
        if width % 2:
            return f"{f[0]} of odd width {width}"
        return (height, width, 2), "|u1", (stride, 2, 1)
    return (height, rb), "|u1", (stride, 1)  # PACKED


def unpack(code, rows, width):
    """Unpack the packed rows (h, row_bytes) of Mono10p, Mono12p,
    Mono10Packed or Mono12Packed into a new (h, width) uint16 array of the
    n-bit samples."""
    f = FORMATS.get(code)
    if f is None or f[1] != PACKED:
        raise ValueError(f"unpack: {name(code)} is not a packed format")
    n = f[3]
    h = rows.shape[0]
    b = rows.astype(np.uint16)
    if f[0] in ("Mono12p", "Mono10Packed", "Mono12Packed"):
        # Two pixels in three bytes; a lone last pixel in two.
        pairs = (width + 1) // 2
        need = 3 * pairs
        if b.shape[1] < need:
            b = np.concatenate([b, np.zeros((h, need - b.shape[1]), np.uint16)], axis=1)
        b0, b1, b2 = b[:, 0:need:3], b[:, 1:need:3], b[:, 2:need:3]
        if f[0] == "Mono12p":  # PFNC: LSB first
            p0 = b0 | (b1 & 0xF) << 8
            p1 = b1 >> 4 | b2 << 4
        else:  # GigE Vision: byte 0 and 2 the high bits, byte 1 the low bits of both
            lo = n - 8
            mask = (1 << lo) - 1
            p0 = b0 << lo | (b1 & mask)
            p1 = b2 << lo | (b1 >> 4) & mask
        out = np.empty((h, 2 * pairs), np.uint16)
        out[:, 0::2], out[:, 1::2] = p0, p1
        return out[:, :width]
    # Mono10p: four pixels in five bytes, LSB first.
    groups = (width + 3) // 4
    need = 5 * groups
    if b.shape[1] < need:
        b = np.concatenate([b, np.zeros((h, need - b.shape[1]), np.uint16)], axis=1)
    c = [b[:, i:need:5] for i in range(5)]
    out = np.empty((h, 4 * groups), np.uint16)
    out[:, 0::4] = c[0] | (c[1] & 0x3) << 8
    out[:, 1::4] = c[1] >> 2 | (c[2] & 0xF) << 6
    out[:, 2::4] = c[2] >> 4 | (c[3] & 0x3F) << 4
    out[:, 3::4] = c[3] >> 6 | c[4] << 2
    return out[:, :width]
