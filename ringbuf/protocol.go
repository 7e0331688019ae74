package ringbuf

// The attach handshake (docs/LAYOUT.md, "Attaching"): a consumer connects to
// the producer's Unix socket and sends a 64-byte hello; the producer answers
// with a 64-byte welcome carrying, on success, the data and control memfds
// as SCM_RIGHTS (data first). The connection then stays open: the producer
// may send 64-byte notes (eviction, closing), and either side closing it
// tells the other that its peer is gone.

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

const msgSize = 64

// Role is what an attaching process wants to be.
type Role uint32

const (
	// RoleConsumer registers in the consumer table, may borrow (hold) slots
	// and is supervised by the producer.
	RoleConsumer Role = 1
	// RoleObserver only looks: it takes no table entry and no holds, and
	// may peek frames and read counters (ringctl).
	RoleObserver Role = 2
)

// Mode is a consumer's delivery policy.
type Mode uint32

const (
	// Lossy consumers want the newest frame; frames published while they
	// were busy are skipped and counted.
	Lossy Mode = 1
	// Lossless consumers want every frame: the producer never reuses a slot
	// whose frame they have not passed, and drops new frames instead.
	Lossless Mode = 2
)

var modeNames = [...]string{Lossy: "lossy", Lossless: "lossless"}

func (m Mode) String() string {
	if int(m) < len(modeNames) && modeNames[m] != "" {
		return modeNames[m]
	}
	return fmt.Sprintf("Mode(%d)", uint32(m))
}

// Welcome status codes.
const (
	statusOK           = 0
	statusIncompatible = 1
	statusDenied       = 2
	statusFull         = 3
	statusBadRequest   = 4
	statusClosing      = 5
)

// Note kinds.
const (
	noteEvicted = 1
	noteClosing = 2
)

// Hello flags (docs/LAYOUT.md 6.2).
const (
	// helloChainWake: the peer passes futex wake-ups on (section 9.5), so
	// the producer may wake one sleeper instead of all.
	helloChainWake = 1 << 0
)

// Wake fan-out (docs/LAYOUT.md 8.2 and 9.5): a producer whose sleepers all
// chain wakes chainFirst of them; each woken chaining sleeper wakes
// chainFanout more, so the last of n is woken after about log2(n) hops and
// the publisher pays for one wake whatever n is.
const (
	chainFirst  = 1
	chainFanout = 2
)

type hello struct {
	version uint32
	role    Role
	mode    Mode
	flags   uint32
	name    string
	start   uint64 // first sequence wanted; 0: the next frame published
}

func (h hello) encode(b []byte) {
	le := binary.LittleEndian
	clear(b[:msgSize])
	le.PutUint64(b[0:], magicHello)
	le.PutUint32(b[8:], h.version)
	le.PutUint32(b[12:], uint32(h.role))
	le.PutUint32(b[16:], uint32(h.mode))
	le.PutUint32(b[20:], h.flags)
	copy(b[24:24+maxNameLen], h.name)
	le.PutUint64(b[56:], h.start)
}

// checkMessage checks what every message of docs/LAYOUT.md 6.2 with a
// version starts with: its size, its magic, then its version.
func checkMessage(b []byte, magic uint64, what string) error {
	le := binary.LittleEndian
	if len(b) != msgSize {
		return fmt.Errorf("decode %s: %w: %d bytes", what, ErrProtocol, len(b))
	}
	if le.Uint64(b[0:]) != magic {
		return fmt.Errorf("decode %s: %w: bad magic", what, ErrIncompatible)
	}
	if v := le.Uint32(b[8:]); v != Version {
		return fmt.Errorf("decode %s: %w: version %d", what, ErrIncompatible, v)
	}
	return nil
}

func decodeHello(b []byte) (hello, error) {
	le := binary.LittleEndian
	if err := checkMessage(b, magicHello, "hello"); err != nil {
		return hello{}, err
	}
	h := hello{version: le.Uint32(b[8:]), role: Role(le.Uint32(b[12:])), mode: Mode(le.Uint32(b[16:])),
		flags: le.Uint32(b[20:]), start: le.Uint64(b[56:])}
	if h.role != RoleConsumer && h.role != RoleObserver {
		return h, fmt.Errorf("decode hello: %w: role %d", ErrProtocol, h.role)
	}
	if h.role == RoleConsumer && h.mode != Lossy && h.mode != Lossless {
		return h, fmt.Errorf("decode hello: %w: mode %d", ErrProtocol, h.mode)
	}
	name := b[24 : 24+maxNameLen]
	if i := bytes.IndexByte(name, 0); i >= 0 {
		name = name[:i]
	}
	for _, c := range name {
		if c < 0x20 || c > 0x7e {
			return h, fmt.Errorf("decode hello: %w: name is not printable ASCII", ErrProtocol)
		}
	}
	h.name = string(name)
	return h, nil
}

type welcome struct {
	status uint32
	entry  uint32
	epoch  uint64
	// The memfds' st_size (docs/LAYOUT.md 6.2), not the header's
	// data_size/control_size, which is what the layout uses of them.
	dataFileSize    uint64
	controlFileSize uint64
}

const noEntry = ^uint32(0)

func (w welcome) encode(b []byte) {
	le := binary.LittleEndian
	clear(b[:msgSize])
	le.PutUint64(b[0:], magicWelcome)
	le.PutUint32(b[8:], Version)
	le.PutUint32(b[12:], w.status)
	le.PutUint32(b[16:], w.entry)
	le.PutUint64(b[24:], w.epoch)
	le.PutUint64(b[32:], w.dataFileSize)
	le.PutUint64(b[40:], w.controlFileSize)
}

func decodeWelcome(b []byte) (welcome, error) {
	le := binary.LittleEndian
	if err := checkMessage(b, magicWelcome, "welcome"); err != nil {
		return welcome{}, err
	}
	w := welcome{status: le.Uint32(b[12:]), entry: le.Uint32(b[16:]), epoch: le.Uint64(b[24:]),
		dataFileSize: le.Uint64(b[32:]), controlFileSize: le.Uint64(b[40:])}
	if w.status == statusOK && w.entry != noEntry && w.entry >= MaxConsumers {
		return w, fmt.Errorf("decode welcome: %w: entry %d", ErrProtocol, w.entry)
	}
	return w, nil
}

func encodeNote(b []byte, kind, reason uint32) {
	clear(b[:msgSize])
	binary.LittleEndian.PutUint64(b[0:], magicNote)
	binary.LittleEndian.PutUint32(b[8:], kind)
	binary.LittleEndian.PutUint32(b[12:], reason)
}

// decodeNote returns a note's kind and, for an eviction, its reason.
func decodeNote(b []byte) (kind, reason uint32, err error) {
	if len(b) != msgSize || binary.LittleEndian.Uint64(b[0:]) != magicNote {
		return 0, 0, fmt.Errorf("decode note: %w", ErrProtocol)
	}
	return binary.LittleEndian.Uint32(b[8:]), binary.LittleEndian.Uint32(b[12:]), nil
}

// encodeBye writes the bye a consumer sends before a clean detach.
func encodeBye(b []byte) {
	clear(b[:msgSize])
	binary.LittleEndian.PutUint64(b[0:], magicBye)
}

func isBye(b []byte) bool {
	return len(b) == msgSize && binary.LittleEndian.Uint64(b[0:]) == magicBye
}
