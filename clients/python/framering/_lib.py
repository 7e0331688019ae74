"""The ctypes binding of libframering (clients/c/include/framering.h).

Every exported function is declared here once, in PROTOTYPES, with its
exact result and argument types: a pointer result is never left to ctypes'
default (a C int, which would truncate it), and every argument is converted
and checked by ctypes before the call. The structures mirror the header's
field for field. tests/test_signatures.py checks both against the header
and against the compiled library's own sizes and offsets.
"""

import ctypes
import ctypes.util
import os

# ---- the header's types ----

c_int, c_int32, c_int64 = ctypes.c_int, ctypes.c_int32, ctypes.c_int64
c_uint32, c_uint64, c_size_t = ctypes.c_uint32, ctypes.c_uint64, ctypes.c_size_t
c_char_p, c_void_p = ctypes.c_char_p, ctypes.c_void_p
POINTER = ctypes.POINTER


class Ring(ctypes.Structure):
    """fr_ring: opaque; only pointers to it are used."""


RingPtr = POINTER(Ring)

# fr_lease: an opaque 64-bit value, never 0.
Lease = c_uint64

# void (*fr_log_fn)(void *arg, int event, const char *msg)
LogFn = ctypes.CFUNCTYPE(None, c_void_p, c_int, c_char_p)


class Options(ctypes.Structure):
    _fields_ = [
        ("ring", c_char_p),
        ("socket_path", c_char_p),
        ("name", c_char_p),
        ("role", c_uint32),
        ("mode", c_uint32),
        ("start", c_uint64),
        ("max_leases", c_uint32),
        ("handshake_timeout_ms", c_int32),
        ("spin_ns", c_int64),
        ("futex_timeout_ms", c_int32),
        ("stall_after_ms", c_int32),
        ("flags", c_uint32),
        ("reserved0", c_uint32),
        ("log", LogFn),
        ("log_arg", c_void_p),
        ("error_buf", POINTER(ctypes.c_char)),
        ("error_buf_size", c_size_t),
    ]


class Drop(ctypes.Structure):
    _fields_ = [("cause", c_uint32), ("reserved", c_uint32), ("count", c_uint64)]


class Frame(ctypes.Structure):
    _fields_ = [
        ("seq", c_uint64),
        ("frame_id", c_uint64),
        ("timestamp_ns", c_int64),
        ("width", c_uint32),
        ("height", c_uint32),
        ("stride", c_uint32),
        ("format", c_uint32),
        ("length", c_uint64),
        ("flags", c_uint32),
        ("slot", c_uint32),
        ("device_timestamp", c_uint64),
        ("origin_epoch", c_uint64),
        ("origin_seq", c_uint64),
        ("publish_ns", c_int64),
        ("drops_before", Drop * 4),
        ("data", c_void_p),
        ("generation", c_uint64),
    ]


class Counters(ctypes.Structure):
    _fields_ = [
        ("delivered", c_uint64),
        ("skipped", c_uint64),
        ("missed", c_uint64),
        ("revoked", c_uint64),
        ("torn", c_uint64),
        ("held", c_uint64),
        ("cursor", c_uint64),
    ]


class Health(ctypes.Structure):
    _fields_ = [
        ("state", c_uint32),
        ("source_state", c_uint32),
        ("heartbeat_age_ns", c_int64),
        ("evicted", c_uint32),
        ("reserved", c_uint32),
    ]


class Info(ctypes.Structure):
    _fields_ = [
        ("epoch", c_uint64),
        ("producer_pid", c_uint32),
        ("entry", c_int32),
        ("role", c_uint32),
        ("mode", c_uint32),
        ("slots", c_uint32),
        ("index_count", c_uint32),
        ("slot_capacity", c_uint64),
        ("hold_quota", c_uint32),
        ("huge_pages", c_uint32),
        ("heartbeat_period_ns", c_int64),
        ("evict_after_ns", c_int64),
        ("data_mapping", c_void_p),
        ("data_mapping_size", c_uint64),
        ("socket_path", ctypes.c_char * 108),
    ]


class RingStats(ctypes.Structure):
    _fields_ = [
        ("published", c_uint64),
        ("ring_state", c_uint32),
        ("source_state", c_uint32),
        ("evictions", c_uint64),
        ("detaches", c_uint64),
        ("reclaims", c_uint64),
        ("reclaimed_holds", c_uint64),
        ("revoked_holds", c_uint64),
        ("copies", c_uint64),
        ("start_mono_ns", c_int64),
        ("heartbeat_ns", c_int64),
        ("waiters", c_uint64),
        ("attached", c_uint64),
        ("drops", c_uint64 * 64),
    ]


STRUCTS = {
    "fr_options": Options,
    "fr_drop": Drop,
    "fr_frame": Frame,
    "fr_counters": Counters,
    "fr_health": Health,
    "fr_info": Info,
    "fr_ring_stats": RingStats,
}

# ---- constants (the header's enums) ----

ABI_VERSION = 2
LATENCY_SLICE_NS = 100000
ROLE_CONSUMER, ROLE_OBSERVER = 1, 2
MODE_LOSSY, MODE_LOSSLESS = 1, 2
OPT_INTERRUPTIBLE, OPT_PREFAULT, OPT_PEEK, OPT_TRACE_SLEEP = 1 << 0, 1 << 1, 1 << 2, 1 << 3
EVENT_STALLED, EVENT_RESUMED, EVENT_EVICTED, EVENT_SLEEP = 1, 2, 3, 4
NO_LEASE = 0

OK = 0
ERR_INVALID = -1
ERR_NO_SUCH_RING = -2
ERR_PRODUCER_GONE = -3
ERR_NOT_RESPONDING = -4
ERR_DENIED = -5
ERR_FULL = -6
ERR_REFUSED = -7
ERR_INCOMPATIBLE = -8
ERR_CORRUPT = -9
ERR_PROTOCOL = -10
ERR_CLOSED = -11
ERR_EVICTED = -12
ERR_REVOKED = -13
ERR_REVOKED_OVERWRITTEN = -14
ERR_TOO_MANY_HELD = -15
ERR_TOO_MANY_LEASES = -16
ERR_RELEASED = -17
ERR_NOT_PUBLISHED = -18
ERR_OVERWRITTEN = -19
ERR_TIMEOUT = -20
ERR_INTERRUPTED = -21
ERR_OBSERVER = -22
ERR_TOO_SMALL = -23
ERR_NOMEM = -24
ERR_SYSTEM = -25

# ---- the functions: name -> (restype, argtypes), exactly as in the header ----

PROTOTYPES = {
    "fr_strerror": (c_char_p, [c_int]),
    "fr_error_name": (c_char_p, [c_int]),
    "fr_abi_version": (c_uint32, []),
    "fr_options_init": (None, [POINTER(Options)]),
    "fr_attach": (c_int, [POINTER(Options), POINTER(RingPtr)]),
    "fr_detach": (c_int, [RingPtr]),
    "fr_shutdown": (c_int, [RingPtr]),
    "fr_next": (c_int, [RingPtr, c_int, POINTER(Lease), POINTER(Frame)]),
    "fr_wait": (c_int, [RingPtr, c_uint64, c_int, POINTER(c_uint64)]),
    "fr_published": (c_uint64, [RingPtr]),
    "fr_borrow": (c_int, [RingPtr, c_uint64, POINTER(Lease), POINTER(Frame)]),
    "fr_release": (c_int, [RingPtr, Lease]),
    "fr_lease_check": (c_int, [RingPtr, Lease]),
    "fr_peek": (c_int, [RingPtr, c_uint64, POINTER(Frame)]),
    "fr_peek_check": (c_int, [RingPtr, POINTER(Frame)]),
    "fr_peek_copy": (c_int, [RingPtr, c_uint64, c_void_p, c_size_t, POINTER(Frame)]),
    "fr_get_counters": (c_int, [RingPtr, POINTER(Counters)]),
    "fr_get_health": (c_int, [RingPtr, POINTER(Health)]),
    "fr_producer_state_name": (c_char_p, [c_uint32]),
    "fr_get_info": (c_int, [RingPtr, POINTER(Info)]),
    "fr_get_ring_stats": (c_int, [RingPtr, POINTER(RingStats)]),
    "fr_data_fd": (c_int, [RingPtr]),
    "fr_socket_path": (c_int, [c_char_p, POINTER(ctypes.c_char), c_size_t]),
    "fr_latency_thread": (c_int, [c_int64]),
}

# ---- loading ----

_HERE = os.path.dirname(os.path.abspath(__file__))


def _candidates():
    env = os.environ.get("FRAMERING_LIB")
    if env:
        yield env
        return
    # Beside the package (a copy installed with it), then a source checkout's
    # build (clients/c/build), then wherever the dynamic loader finds it
    # (make install PREFIX=/usr/local, ldconfig or LD_LIBRARY_PATH).
    yield os.path.join(_HERE, "libframering.so.0")
    yield os.path.normpath(os.path.join(_HERE, "..", "..", "c", "build", "libframering.so.0"))
    found = ctypes.util.find_library("framering")
    if found:
        yield found
    yield "libframering.so.0"


def load():
    """Load libframering and declare every prototype. Raises OSError with
    every place it looked when the library cannot be found."""
    tried = []
    for path in _candidates():
        if os.sep in path and not os.path.exists(path):
            tried.append(path + " (missing)")
            continue
        try:
            # use_errno: FR_ERR_SYSTEM's errno reaches ctypes.get_errno().
            lib = ctypes.CDLL(path, use_errno=True)
        except OSError as e:
            tried.append(f"{path} ({e})")
            continue
        # The version first: an older library lacks functions declared below.
        lib.fr_abi_version.restype, lib.fr_abi_version.argtypes = PROTOTYPES["fr_abi_version"]
        if lib.fr_abi_version() != ABI_VERSION:
            raise OSError(f"{path}: libframering ABI {lib.fr_abi_version()}, this package speaks {ABI_VERSION}")
        for name, (restype, argtypes) in PROTOTYPES.items():
            fn = getattr(lib, name)
            fn.restype = restype
            fn.argtypes = argtypes
        return lib
    raise OSError(
        "libframering not found; build it with `make -C clients/c` (or install it with "
        "`make -C clients/c install PREFIX=...`), or point FRAMERING_LIB at libframering.so.0. Tried: "
        + "; ".join(tried)
    )


lib = load()
