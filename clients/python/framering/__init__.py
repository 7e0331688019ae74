"""framering: read frames from a framering ring as zero-copy numpy arrays.

A framering ring is a set of image frames in shared memory made by one
producer process (docs/LAYOUT.md). This package attaches to one through
libframering (clients/c, loaded with ctypes) and hands out each frame's
pixels as a read-only numpy view of the shared memory itself: no copy.

    import framering

    with framering.attach("line1", name="inspect") as ring:
        for frame in ring.frames():
            img = frame.array          # (h, w) uint8 for Mono8: a view of the slot
            print(frame.seq, img.mean())

Lease rules (who owns the memory, and for how long):

- ``ring.frames()`` borrows each frame: the producer will not reuse its slot
  while you hold it. The frame, and every array taken from it, is valid until
  the loop moves on to the next frame (or ends, by break, exception or
  Ctrl-C), when it is released.
- ``frame.keep()`` keeps it past its iteration: it stays held until
  ``frame.release()``, the end of a ``with frame:`` block, or until neither the
  frame nor any array taken from it is referenced any more. A consumer may
  hold at most ``ring.hold_quota`` slots at once (``TooManyHeld``).
- Using an array after its frame was released is your bug: the memory stays
  mapped (no crash), but the producer may be writing a new frame into it.
  ``frame.valid()`` tells whether what you read is still the frame.
- If the producer evicts the consumer (it held too much for too long, or fell
  behind as a lossless consumer), every frame it holds is revoked:
  ``frame.valid()`` turns False once the slot is reused, ``release()`` raises
  ``Revoked`` (or ``RevokedOverwritten``: discard what you computed), and the
  next ``frames()`` step raises ``Evicted``.
- ``copy=True`` hands out private, writable arrays instead (the frame is
  copied and released at once): for frames you keep for long.
- Arrays are read-only: the mapping is; writing raises ValueError.
- ``observer=True`` attaches without holding anything: frames are peeked, and
  the loop validates each one after your code ran (``ring.torn`` counts the
  frames that changed under it; ``frame.valid()`` asks). An observer's
  ``copy=True`` frames are validated copies.

Latency: ``framering.latency_thread()`` on the thread that waits for frames
gives it a 0.1 ms scheduler slice (Linux 6.12 and later), so that when the
producer's wake-up lands on the CPU the producer runs on, the consumer runs
at once instead of waiting for the producer to sleep (see latency_thread).

Errors are exceptions carrying libframering's message: NoSuchRing,
ProducerGone, NotResponding, Denied, TableFull, Closed, Evicted, Revoked,
RevokedOverwritten, TooManyHeld, Timeout, ... all subclasses of
framering.Error.
"""

import ctypes
import logging
import mmap
import os
import time
import weakref
from collections import namedtuple

import numpy as np

from . import _formats
from . import _lib
from ._formats import FORMATS as _FORMATS
from ._lib import lib as _c

__all__ = [
    "attach", "Ring", "Frame", "unpack", "format_name", "FORMATS", "latency_thread", "LATENCY_SLICE_NS",
    "Error", "NoSuchRing", "ProducerGone", "NotResponding", "Denied", "TableFull", "Refused", "Incompatible",
    "Corrupt", "ProtocolError", "Closed", "Evicted", "Revoked", "RevokedOverwritten", "TooManyHeld",
    "TooManyLeases", "Released", "NotPublished", "Overwritten", "Timeout", "ObserverOnly", "FormatError",
]

log = logging.getLogger("framering")

# ---- errors ----


class Error(Exception):
    """A libframering error: .code is its FR_ERR_* value, .name its identifier."""

    def __init__(self, code, detail=""):
        self.code = code
        self.name = _c.fr_error_name(code).decode()
        msg = _c.fr_strerror(code).decode()
        super().__init__(f"{msg}: {detail}" if detail else msg)


class NoSuchRing(Error, FileNotFoundError):
    """No ring of that name exists (no socket at its path)."""


class ProducerGone(Error, ConnectionError):
    """The producer crashed or was killed (its connection ended without a close)."""


class NotResponding(Error, TimeoutError):
    """The producer accepted the connection but did not answer: stopped or hung."""


class Denied(Error, PermissionError):
    """The producer's allow lists (or the socket's permissions) refuse us."""


class TableFull(Error):
    """All 64 consumer table entries are in use."""


class Refused(Error):
    """The producer refused the request."""


class Incompatible(Error):
    """Another layout version or not a framering ring."""


class Corrupt(Error):
    """A segment is inconsistent (a hostile or damaged ring)."""


class ProtocolError(Error):
    """The peer broke the attach protocol."""


class Closed(Error):
    """The producer closed the ring (and every frame was read), or the Ring was closed."""


class Evicted(Error):
    """The producer evicted this consumer: its frames are revoked. Attach again for more."""


class Revoked(Error):
    """The frame was revoked (the consumer was evicted) but was still intact."""


class RevokedOverwritten(Revoked):
    """The frame was revoked and changed while it was read: discard what was computed."""


class TooManyHeld(Error):
    """This consumer already holds as many slots as the ring's hold quota allows."""


class TooManyLeases(Error):
    """This Ring already has max_leases frames outstanding."""


class Released(Error):
    """The frame was already released."""


class NotPublished(Error):
    """That sequence number has not been published yet."""


class Overwritten(Error):
    """The frame is gone: its slot was reused first, or it changed while it was read."""


class Timeout(Error, TimeoutError):
    """No frame arrived within the timeout."""


class ObserverOnly(Error):
    """An observer cannot hold frames."""


class FormatError(Error, ValueError):
    """The frame's geometry does not describe its bytes (Frame.raw still has them)."""

    def __init__(self, detail):
        Exception.__init__(self, detail)
        self.code, self.name = _lib.ERR_CORRUPT, "FormatError"


_EXC = {
    _lib.ERR_INVALID: ValueError,
    _lib.ERR_NO_SUCH_RING: NoSuchRing,
    _lib.ERR_PRODUCER_GONE: ProducerGone,
    _lib.ERR_NOT_RESPONDING: NotResponding,
    _lib.ERR_DENIED: Denied,
    _lib.ERR_FULL: TableFull,
    _lib.ERR_REFUSED: Refused,
    _lib.ERR_INCOMPATIBLE: Incompatible,
    _lib.ERR_CORRUPT: Corrupt,
    _lib.ERR_PROTOCOL: ProtocolError,
    _lib.ERR_CLOSED: Closed,
    _lib.ERR_EVICTED: Evicted,
    _lib.ERR_REVOKED: Revoked,
    _lib.ERR_REVOKED_OVERWRITTEN: RevokedOverwritten,
    _lib.ERR_TOO_MANY_HELD: TooManyHeld,
    _lib.ERR_TOO_MANY_LEASES: TooManyLeases,
    _lib.ERR_RELEASED: Released,
    _lib.ERR_NOT_PUBLISHED: NotPublished,
    _lib.ERR_OVERWRITTEN: Overwritten,
    _lib.ERR_TIMEOUT: Timeout,
    _lib.ERR_OBSERVER: ObserverOnly,
}


def _error(code, detail=""):
    if code == _lib.ERR_INVALID:
        return ValueError(f"{_c.fr_strerror(code).decode()}: {detail}" if detail else _c.fr_strerror(code).decode())
    if code == _lib.ERR_NOMEM:
        return MemoryError(_c.fr_strerror(code).decode())
    if code == _lib.ERR_SYSTEM:
        e = ctypes.get_errno()
        return OSError(e, f"{_c.fr_strerror(code).decode()}: {detail or os.strerror(e)}")
    return _EXC.get(code, Error)(code, detail)


# ---- formats ----

FORMATS = {v[0]: k for k, v in _FORMATS.items()}
"""PFNC name -> code of every format framering knows (see _formats)."""


def format_name(code):
    """The PFNC name of a format code ("Mono8"), or "0x%08X"."""
    return _formats.name(code)


def unpack(frame):
    """A new (h, w) uint16 array of the samples of a packed frame (Mono10p,
    Mono12p, Mono10Packed, Mono12Packed). Read while the frame is valid."""
    return _formats.unpack(frame.format, frame.array, frame.width)


# ---- frames ----

Drop = namedtuple("Drop", "cause count")
Counters = namedtuple("Counters", "delivered skipped missed revoked torn held cursor")
Health = namedtuple("Health", "state source_state heartbeat_age evicted")
Info = namedtuple("Info", "epoch producer_pid entry role mode slots index_count slot_capacity hold_quota "
                  "huge_pages heartbeat_period evict_after socket_path")


class _View:
    """The base of a zero-copy array: numpy reads the address from
    __array_interface__, and the array keeps this object, hence the Frame (its
    lease) and the mapping, alive for as long as the array lives."""

    __slots__ = ("__array_interface__", "frame")

    def __init__(self, addr, shape, typestr, strides, frame):
        self.__array_interface__ = {"version": 3, "shape": shape, "typestr": typestr, "strides": strides,
                                    "data": (addr, True)}  # True: read-only
        self.frame = frame


_HELD, _KEPT, _RELEASED, _PEEKED, _COPIED = range(5)

# Frame geometry -> its numpy layout (or why there is none): a stream's
# frames share one geometry, so this is computed once.
_LAYOUTS = {}


class Frame:
    """One frame: its metadata, and its pixels as a numpy array.

    A borrowed frame holds its slot (a lease) until released; a peeked one
    (observer) holds nothing and is checked by valid(); a copied one owns a
    private array. Metadata attributes: seq, frame_id, timestamp_ns, width,
    height, stride, format (PFNC code), format_name, length, flags, slot,
    device_timestamp, origin_epoch, origin_seq, publish_ns, drops_before.
    """

    __slots__ = ("_ring", "_f", "_lease", "_state", "_array", "_private", "__weakref__")

    def __init__(self, ring, f, lease, state, private=None):
        self._ring = ring
        self._f = f
        self._lease = lease
        self._state = state
        self._array = None
        self._private = private

    # metadata
    seq = property(lambda s: s._f.seq)
    frame_id = property(lambda s: s._f.frame_id)
    timestamp_ns = property(lambda s: s._f.timestamp_ns)
    width = property(lambda s: s._f.width)
    height = property(lambda s: s._f.height)
    stride = property(lambda s: s._f.stride)
    format = property(lambda s: s._f.format)
    length = property(lambda s: s._f.length)
    flags = property(lambda s: s._f.flags)
    slot = property(lambda s: s._f.slot)
    device_timestamp = property(lambda s: s._f.device_timestamp)
    origin_epoch = property(lambda s: s._f.origin_epoch)
    origin_seq = property(lambda s: s._f.origin_seq)
    publish_ns = property(lambda s: s._f.publish_ns)
    format_name = property(lambda s: _formats.name(s._f.format))
    sample_bits = property(lambda s: _formats.sample_bits(s._f.format),
                           doc="significant bits of one sample (10 for Mono10); None for an unknown format")

    @property
    def drops_before(self):
        """Frames lost just before this one, by cause: [(cause code, count)]."""
        return [Drop(d.cause, d.count) for d in self._f.drops_before if d.count]

    @property
    def array(self):
        """The pixels as a numpy array shaped by the format (see
        framering._formats): zero-copy and read-only for a borrowed or peeked
        frame, private for a copied one. Valid while the frame is (see the
        lease rules)."""
        # Cached weakly: the array refers to the frame (to keep its lease), so
        # a strong reference back would make a cycle only the cyclic GC ends.
        a = self._array() if self._array is not None else None
        if a is None:
            f = self._f
            key = (f.format, f.width, f.height, f.stride, f.length)
            lay = _LAYOUTS.get(key)
            if lay is None:
                lay = _formats.layout(*key)
                if len(_LAYOUTS) < 4096:
                    _LAYOUTS[key] = lay
            if isinstance(lay, str):
                raise FormatError(lay)
            a = self._view(*lay)
            self._array = weakref.ref(a)
        elif self._state == _RELEASED:
            raise Released(_lib.ERR_RELEASED, f"frame {self._f.seq}")
        return a

    @property
    def raw(self):
        """The frame's length bytes as a 1-D uint8 array (same ownership as array)."""
        return self._view((self._f.length,), "|u1", (1,))

    def _view(self, shape, typestr, strides):
        if self._private is not None:
            return np.ndarray(shape, np.dtype(typestr), self._private, 0, strides)
        if self._state == _RELEASED:
            raise Released(_lib.ERR_RELEASED, f"frame {self._f.seq}")
        # The same offset in our own mapping of the data segment (Ring._mm).
        addr = self._ring._base + (self._f.data - self._ring._lib_base)
        return np.asarray(_View(addr, shape, typestr, strides, self))

    def keep(self):
        """Keep the frame past its loop iteration (see the lease rules). Returns self."""
        if self._state == _HELD:
            self._state = _KEPT
        return self

    def release(self):
        """End the lease (a borrowed frame); nothing for a peeked or copied one.
        Raises Revoked or RevokedOverwritten if the consumer was evicted while
        holding it, Released if it was released before."""
        if self._state in (_HELD, _KEPT):
            self._state = _RELEASED
            self._ring._release(self._lease)
        elif self._state == _RELEASED:
            raise Released(_lib.ERR_RELEASED, f"frame {self._f.seq}")

    def valid(self):
        """Whether everything read from the frame so far is the frame: True
        while it is held (or was revoked but is still intact), False once it was
        released or its slot was reused. For a peeked frame: whether the slot
        still carries it, unchanged. A copied frame is always valid."""
        if self._state in (_HELD, _KEPT):
            return self._ring._check(self._lease) in (_lib.OK, _lib.ERR_REVOKED)
        if self._state == _PEEKED:
            return self._ring._peek_valid(self._f)
        return self._state == _COPIED

    def copy(self):
        """A private, writable copy of the array."""
        return np.array(self.array, copy=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self._state in (_HELD, _KEPT):
            self._state = _RELEASED
            code = self._ring._release_code(self._lease)
            if code != _lib.OK and exc[0] is None:
                raise _error(code, f"frame {self._f.seq}")
        return False

    def __del__(self):
        # The last reference (frame and arrays) is gone: end a kept lease.
        if self._state in (_HELD, _KEPT):
            self._state = _RELEASED
            try:
                self._ring._release_code(self._lease)
            except Exception:  # interpreter shutdown
                pass

    def __repr__(self):
        return (f"<framering.Frame seq={self.seq} {self.width}x{self.height} {self.format_name} "
                f"{('held', 'kept', 'released', 'peeked', 'copied')[self._state]}>")


# ---- the ring ----


class Ring:
    """An attachment to a ring. Use attach() to make one; close it (or use
    it as a context manager) to detach.

    Thread safety: frames may be released, checked and read from any
    thread; frames()/next() are for one thread at a time.
    """

    def __init__(self, opts, copy, errbuf):
        self._copy = copy
        self._closed = True  # until attached: nothing to detach
        self._torn = 0
        self._handle = _lib.RingPtr()
        # Kept alive while attached: libframering calls it from our own calls.
        self._logfn = _lib.LogFn(_log_event)
        opts.log = self._logfn
        rc = _c.fr_attach(ctypes.byref(opts), ctypes.byref(self._handle))
        if rc != _lib.OK:
            raise _error(rc, errbuf.value.decode(errors="replace"))
        self._opts = opts
        i = _lib.Info()
        _c.fr_get_info(self._handle, ctypes.byref(i))
        self._info = i
        self.observer = i.role == _lib.ROLE_OBSERVER
        # Our own read-only mapping of the data segment: arrays keep it alive
        # (through their frames), so an array outliving the Ring reads stale
        # memory, never unmapped memory.
        fd = _c.fr_data_fd(self._handle)
        if fd < 0:
            _c.fr_detach(self._handle)
            raise _error(fd, "dup the data segment")
        try:
            self._mm = mmap.mmap(fd, i.data_mapping_size, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ)
        except BaseException:
            _c.fr_detach(self._handle)
            raise
        finally:
            os.close(fd)
        self._base = np.frombuffer(self._mm, np.uint8).__array_interface__["data"][0]
        self._lib_base = i.data_mapping
        self._closed = False

    # -- attributes --
    epoch = property(lambda s: s._info.epoch)
    slots = property(lambda s: s._info.slots)
    slot_capacity = property(lambda s: s._info.slot_capacity)
    hold_quota = property(lambda s: s._info.hold_quota)
    entry = property(lambda s: s._info.entry)
    torn = property(lambda s: s._torn, doc="observer frames found changed after the loop body read them")

    @property
    def info(self):
        i = self._info
        return Info(i.epoch, i.producer_pid, i.entry, "observer" if i.role == _lib.ROLE_OBSERVER else "consumer",
                    "lossless" if i.mode == _lib.MODE_LOSSLESS else "lossy", i.slots, i.index_count,
                    i.slot_capacity, i.hold_quota, bool(i.huge_pages), i.heartbeat_period_ns / 1e9,
                    i.evict_after_ns / 1e9, i.socket_path.decode())

    @property
    def published(self):
        """The newest published sequence number."""
        self._open()
        return _c.fr_published(self._handle)

    @property
    def counters(self):
        """What this attachment did: Counters(delivered, skipped, missed,
        revoked, torn, held, cursor); after close, as they were at close."""
        if self._closed:
            return self._final
        c = _lib.Counters()
        _c.fr_get_counters(self._handle, ctypes.byref(c))
        return Counters(c.delivered, c.skipped, c.missed, c.revoked, c.torn, c.held, c.cursor)

    def health(self):
        """The producer's state as this consumer judges it: Health(state,
        source_state, heartbeat_age seconds, evicted)."""
        self._open()
        h = _lib.Health()
        _c.fr_get_health(self._handle, ctypes.byref(h))
        return Health(_c.fr_producer_state_name(h.state).decode(), h.source_state, h.heartbeat_age_ns / 1e9,
                      bool(h.evicted))

    def stats(self):
        """Ring-wide state and counters (as `ringctl show` reports them), a dict."""
        self._open()
        s = _lib.RingStats()
        _c.fr_get_ring_stats(self._handle, ctypes.byref(s))
        d = {name: getattr(s, name) for name, _ in _lib.RingStats._fields_ if name != "drops"}
        d["drops"] = {c: n for c, n in enumerate(s.drops) if n}
        return d

    # -- frames --

    def _open(self):
        if self._closed:
            raise Closed(_lib.ERR_CLOSED, "the Ring was closed")

    def _frame(self, f, lease, copy):
        if self.observer:
            fr = Frame(self, f, 0, _PEEKED)
            if copy:
                arr = fr.raw.copy()
                if _c.fr_peek_check(self._handle, ctypes.byref(f)) != _lib.OK:
                    return None  # torn: the copy is void
                return Frame(self, f, 0, _COPIED, arr)
            return fr
        fr = Frame(self, f, lease.value, _HELD)
        if copy:
            arr = fr.raw.copy()
            fr.release()
            return Frame(self, f, 0, _COPIED, arr)
        return fr

    def next(self, timeout=None, copy=None):
        """The next frame by the ring's mode (lossless: every one in order;
        lossy: the newest), waiting up to timeout seconds (None: forever). A
        borrowed frame must be released (release(), or `with frame:`).
        Raises Timeout, Closed, ProducerGone, Evicted, TooManyHeld, ..."""
        self._open()
        copy = self._copy if copy is None else copy
        deadline = None if timeout is None else _now() + timeout
        while True:
            # Wait in slices, so that Ctrl-C (a KeyboardInterrupt raised
            # between calls) is never held up for long.
            ms = 250
            if deadline is not None:
                ms = max(0, min(ms, int((deadline - _now()) * 1000)))
            f = _lib.Frame()
            lease = _lib.Lease()
            rc = _c.fr_next(self._handle, ms, ctypes.byref(lease), ctypes.byref(f))
            if rc == _lib.OK:
                fr = self._frame(f, lease, copy)
                if fr is None:
                    self._torn += 1
                    continue
                return fr
            if rc == _lib.ERR_INTERRUPTED or (rc == _lib.ERR_TIMEOUT and (deadline is None or _now() < deadline)):
                continue
            raise _error(rc)

    def frames(self, timeout=None, copy=None):
        """Yield frames by the ring's mode until the ring ends (Closed,
        ProducerGone and Evicted are raised), each borrowed for one iteration
        (see the lease rules); timeout: seconds to wait for each frame (None:
        forever), after which Timeout is raised. copy: private arrays (default:
        attach's copy)."""
        while True:
            fr = self.next(timeout, copy)
            try:
                yield fr
            except BaseException:
                # The loop ended by an exception (KeyboardInterrupt included)
                # or the generator was closed (break): release what the loop
                # holds, and let that exception be the one reported.
                self._end(fr, quiet=True)
                raise
            self._end(fr, quiet=False)

    def _end(self, fr, quiet):
        if fr._state == _HELD:
            fr._state = _RELEASED
            code = self._release_code(fr._lease)
            if code != _lib.OK and not quiet:
                raise _error(code, f"frame {fr.seq}")
        elif fr._state == _PEEKED and not self._peek_valid(fr._f):
            self._torn += 1

    def borrow(self, seq):
        """Borrow frame seq (a lease you must release)."""
        self._open()
        f = _lib.Frame()
        lease = _lib.Lease()
        rc = _c.fr_borrow(self._handle, seq, ctypes.byref(lease), ctypes.byref(f))
        if rc != _lib.OK:
            raise _error(rc, f"frame {seq}")
        return Frame(self, f, lease.value, _HELD)

    def read(self, seq):
        """A validated private copy of frame seq, taken without a hold."""
        self._open()
        f = _lib.Frame()
        rc = _c.fr_peek(self._handle, seq, ctypes.byref(f))
        if rc == _lib.OK:
            buf = np.empty(f.length, np.uint8)
            rc = _c.fr_peek_copy(self._handle, seq, buf.ctypes.data, buf.nbytes, ctypes.byref(f))
        if rc != _lib.OK:
            raise _error(rc, f"frame {seq}")
        return Frame(self, f, 0, _COPIED, buf)

    # -- lease plumbing (used by Frame) --

    def _release_code(self, lease):
        return _c.fr_release(self._handle, lease)

    def _release(self, lease):
        code = _c.fr_release(self._handle, lease)
        if code != _lib.OK:
            raise _error(code)

    def _check(self, lease):
        return _c.fr_lease_check(self._handle, lease)

    def _peek_valid(self, f):
        # After close an observer's handle is gone (it holds nothing that
        # keeps it): nothing read since can be trusted.
        return not self._closed and _c.fr_peek_check(self._handle, ctypes.byref(f)) == _lib.OK

    # -- lifetime --

    def close(self):
        """Detach. Frames still kept stay held (and the attachment with them)
        until they are released; arrays stay mapped for as long as they live."""
        if not self._closed:
            self._final = self.counters
            self._closed = True
            _c.fr_detach(self._handle)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __del__(self):
        if not getattr(self, "_closed", True):
            self.close()

    def __repr__(self):
        i = getattr(self, "_info", None)
        if i is None:
            return "<framering.Ring (not attached)>"
        return f"<framering.Ring {i.socket_path.decode()} epoch={i.epoch:016x} entry={i.entry}>"


def _now():
    return time.monotonic()


def _log_event(arg, event, msg):
    # Called by libframering from inside our own ctypes calls (never for
    # sleeps: FR_OPT_TRACE_SLEEP stays off, so that a KeyboardInterrupt is
    # not swallowed by a callback on the wait path).
    text = msg.decode(errors="replace") if msg else ""
    if event == _lib.EVENT_RESUMED:
        log.info("%s", text)
    else:
        log.warning("%s", text)


def attach(ring=None, *, name="", lossless=False, start=0, observer=False, socket=None, copy=False,
           max_leases=0, handshake_timeout=5.0, spin_us=None, futex_timeout=None):
    """Attach to a ring and return a Ring (a context manager).

    ring: the ring's name (its socket is found in the runtime directory:
    $FRAMERING_RUNTIME_DIR, $XDG_RUNTIME_DIR/framering, /run/framering for
    root, else $TMPDIR/framering-UID), or socket: an explicit socket path.
    name: shown in `ringctl show` (32 printable ASCII bytes at most).
    lossless: every frame in order (the producer drops new frames rather than
    overwrite one you have not read; fall too far behind and you are
    evicted); else the newest frame each time (the default).
    start: the first sequence number wanted (0: the next one; 1: the oldest
    the ring still has).
    observer: take no table entry and hold nothing; frames are peeked.
    copy: hand out private arrays (see the lease rules).
    spin_us: microseconds to poll before sleeping (negative: busy-poll).
    """
    opts = _lib.Options()
    errbuf = ctypes.create_string_buffer(512)
    opts.ring = ring.encode() if ring else None
    opts.socket_path = os.fsencode(socket) if socket else None
    opts.name = name.encode("ascii") if name else None
    opts.role = _lib.ROLE_OBSERVER if observer else _lib.ROLE_CONSUMER
    opts.mode = _lib.MODE_LOSSLESS if lossless else _lib.MODE_LOSSY
    opts.start = start
    opts.max_leases = max_leases
    opts.handshake_timeout_ms = int(handshake_timeout * 1000)
    if spin_us is not None:
        opts.spin_ns = -1 if spin_us < 0 else max(1, int(spin_us * 1000))
    if futex_timeout is not None:
        opts.futex_timeout_ms = max(1, int(futex_timeout * 1000))
    opts.flags = _lib.OPT_INTERRUPTIBLE
    opts.error_buf = ctypes.cast(errbuf, ctypes.POINTER(ctypes.c_char))
    opts.error_buf_size = len(errbuf)
    return Ring(opts, copy, errbuf)


LATENCY_SLICE_NS = _lib.LATENCY_SLICE_NS
"""The slice latency_thread() asks for by default, ns: 0.1 ms, the shortest Linux grants."""


def latency_thread(slice_ns=0):
    """Ask the kernel for a short scheduler slice for the calling thread
    (libframering's fr_latency_thread): slice_ns nanoseconds, 0 for
    LATENCY_SLICE_NS, negative for the kernel's default again.

    Call it on the thread that iterates ring.frames() (or calls next), in a
    process whose job is to take each frame as soon as it is published.
    Under Linux 6.12's EEVDF scheduler a woken thread with a shorter slice
    than the running one preempts it at once: a consumer woken onto the
    CPU its producer runs on no longer waits there for the producer to
    sleep. The kernel clamps the slice to 0.1-100 ms, and earlier kernels
    accept and ignore it. The thread's policy (SCHED_OTHER or SCHED_BATCH)
    and nice value are kept; a thread of another policy (real-time,
    SCHED_IDLE) is left as it is. The slice is the thread's, not a ring's:
    it lasts until changed, and threads and processes started from the
    thread afterwards inherit it. Raises OSError if the kernel refuses.
    """
    rc = _c.fr_latency_thread(int(slice_ns))
    if rc != _lib.OK:
        raise _error(rc, "sched_setattr")


def socket_path(ring=None):
    """The socket path of a ring name, as attach() resolves it."""
    buf = ctypes.create_string_buffer(256)
    rc = _c.fr_socket_path(ring.encode() if ring else None, buf, len(buf))
    if rc != _lib.OK:
        raise _error(rc, f"ring {ring!r}")
    return buf.value.decode()

