"""Signatures are part of the contract: every ctypes prototype of the package
matches framering.h exactly (result and argument types; a pointer result is
never left to ctypes' default int), every exported function of the header
is declared, every structure has the C layout (sizes and offsets from the C
compiler), and every constant has the header's value."""

import ctypes
import os
import re
import subprocess

import pytest

import framering
from framering import _lib

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
HEADER = os.path.join(REPO, "clients", "c", "include", "framering.h")

P = ctypes.POINTER
C_TYPES = {
    "void": None,
    "int": ctypes.c_int,
    "uint32_t": ctypes.c_uint32,
    "uint64_t": ctypes.c_uint64,
    "int64_t": ctypes.c_int64,
    "size_t": ctypes.c_size_t,
    "const char *": ctypes.c_char_p,
    "char *": P(ctypes.c_char),
    "void *": ctypes.c_void_p,
    "fr_lease": ctypes.c_uint64,
    "fr_lease *": P(ctypes.c_uint64),
    "uint64_t *": P(ctypes.c_uint64),
    "fr_ring *": _lib.RingPtr,
    "fr_ring **": P(_lib.RingPtr),
    "fr_options *": P(_lib.Options),
    "const fr_options *": P(_lib.Options),
    "fr_frame *": P(_lib.Frame),
    "const fr_frame *": P(_lib.Frame),
    "fr_counters *": P(_lib.Counters),
    "fr_health *": P(_lib.Health),
    "fr_info *": P(_lib.Info),
    "fr_ring_stats *": P(_lib.RingStats),
}


def header_prototypes():
    """name -> (C result type, [C argument types]) of every FR_API function."""
    text = open(HEADER).read()
    out = {}
    for ret, name, params in re.findall(r"^FR_API\s+(.+?)\s*\b(fr_\w+)\((.*?)\);", text, re.M | re.S):
        ret = re.sub(r"\s*\*", " *", ret).strip()
        args = []
        params = " ".join(params.split())
        if params != "void":
            for p in params.split(","):
                p = p.strip()
                m = re.match(r"^(.*?)(\w+)$", p)
                t = re.sub(r"\s*\*\s*", " *", m.group(1).strip()).replace("* *", "**").strip()
                args.append(t)
        out[name] = (ret, args)
    return out


def c_type(t):
    assert t in C_TYPES, f"no ctypes mapping for C type {t!r}: add it here and in _lib.PROTOTYPES"
    return C_TYPES[t]


def test_header_prototypes_parsed():
    protos = header_prototypes()
    assert len(protos) >= 20 and "fr_next" in protos
    assert protos["fr_next"] == ("int", ["fr_ring *", "int", "fr_lease *", "fr_frame *"])
    assert protos["fr_strerror"] == ("const char *", ["int"])


def test_every_prototype_matches_the_header():
    protos = header_prototypes()
    assert set(protos) == set(_lib.PROTOTYPES), (set(protos) ^ set(_lib.PROTOTYPES))
    for name, (ret, args) in protos.items():
        restype, argtypes = _lib.PROTOTYPES[name]
        assert restype is c_type(ret), f"{name}: result {restype}, header says {ret}"
        assert list(argtypes) == [c_type(a) for a in args], f"{name}: arguments {argtypes}, header says {args}"
        fn = getattr(_lib.lib, name)
        # What the loaded function really uses (not only the table).
        assert fn.restype is restype and list(fn.argtypes or []) == list(argtypes), name
        if ret.endswith("*"):
            assert fn.restype is not ctypes.c_int, f"{name} returns a pointer: never the default int"


def test_struct_layouts_match_the_compiler(tmp_path):
    lines = ["#include <stddef.h>", "#include <stdio.h>", '#include "framering.h"', "int main(void) {"]
    for cname, st in _lib.STRUCTS.items():
        lines.append(f'printf("{cname} - 0 %zu\\n", sizeof({cname}));')
        for field, _ in st._fields_:
            lines.append(f'printf("{cname} {field} %zu %zu\\n", offsetof({cname}, {field}), '
                         f"sizeof((({cname} *)0)->{field}));")
    lines.append("return 0; }")
    src = tmp_path / "layout.c"
    src.write_text("\n".join(lines))
    exe = tmp_path / "layout"
    subprocess.run(["cc", "-std=c11", "-Wall", "-Werror", "-I", os.path.dirname(HEADER), str(src), "-o", str(exe)],
                   check=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    checked = 0
    for line in out.splitlines():
        cname, field, a, b = line.split()
        st = _lib.STRUCTS[cname]
        if field == "-":
            assert ctypes.sizeof(st) == int(b), f"sizeof({cname}): C {b}, ctypes {ctypes.sizeof(st)}"
        else:
            d = getattr(st, field)
            assert (d.offset, d.size) == (int(a), int(b)), f"{cname}.{field}: C {a}+{b}, ctypes {d.offset}+{d.size}"
        checked += 1
    assert checked > 60


def test_constants_match_the_header():
    text = open(HEADER).read()
    consts = dict((n, int(v)) for n, v in re.findall(r"^\s*FR_(\w+)\s*=\s*(-?\d+|\d+u << \d+)", text, re.M)
                  if "<<" not in v)
    consts.update((n, 1 << int(s)) for n, s in re.findall(r"^\s*FR_(OPT_\w+)\s*=\s*1u << (\d+)", text, re.M))
    assert consts["ERR_SYSTEM"] == -25
    mapped = {"OK": "OK"}
    for name, value in consts.items():
        py = mapped.get(name, name)
        if name.startswith(("PRODUCER_", "SOURCE_")):
            continue  # enums framering reports by name
        assert getattr(_lib, py) == value, f"FR_{name}: header {value}, framering._lib {getattr(_lib, py, None)}"
    assert re.search(r"#define FR_ABI_VERSION (\d+)", text).group(1) == str(_lib.ABI_VERSION)
    assert re.search(r"#define FR_LATENCY_SLICE_NS (\d+)", text).group(1) == str(_lib.LATENCY_SLICE_NS)


def test_every_error_code_has_an_exception():
    for code in range(-1, -26, -1):
        e = framering._error(code, "detail")
        assert isinstance(e, Exception) and "detail" in str(e) or code in (_lib.ERR_NOMEM,), code
        if code not in (_lib.ERR_INVALID, _lib.ERR_NOMEM, _lib.ERR_SYSTEM, _lib.ERR_INTERRUPTED):
            assert isinstance(e, framering.Error) and e.code == code


@pytest.mark.parametrize("code,exc", [(_lib.ERR_EVICTED, framering.Evicted), (_lib.ERR_REVOKED, framering.Revoked),
                                      (_lib.ERR_REVOKED_OVERWRITTEN, framering.RevokedOverwritten),
                                      (_lib.ERR_TOO_MANY_HELD, framering.TooManyHeld),
                                      (_lib.ERR_PRODUCER_GONE, framering.ProducerGone)])
def test_exception_classes(code, exc):
    e = framering._error(code)
    assert type(e) is exc and str(e) == _lib.lib.fr_strerror(code).decode()
