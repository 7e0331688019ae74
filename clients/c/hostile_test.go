package libframering_test

import (
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/framering/framering/shm"
)

// The fake producer: hand-built segments and welcomes served over a real
// socket, written from docs/LAYOUT.md (sections 3-6) independently of
// ringbuf, so that each field can be made wrong on its own. The valid
// baseline must attach, which shows the fake is right.

const (
	fakeSlots = 4
	fakeIndex = 64
	fakeCap   = 4096
	fakeEpoch = 0x0123456789abcdef | 1
	noEntry   = 0xFFFFFFFF
)

// fakeGeo is section 5's derivation for the fake ring.
func fakeGeo(slots, index, capacity uint64) (desc, idx, payload, data, holds, table, ctl uint64) {
	align := func(n, a uint64) uint64 { return (n + a - 1) / a * a }
	desc = 4096
	idx = desc + 128*slots
	payload = align(idx+8*index, 4096)
	data = payload + slots*capacity
	holds = 4096
	table = holds + 64*slots
	ctl = align(table+64*256, 4096)
	return
}

type fake struct {
	name   string
	data   []byte // data header page
	ctl    []byte // control header page
	dataSz uint64 // memfd sizes
	ctlSz  uint64
	// seals added on top of SHRINK|GROW
	dataSeals, ctlSeals shm.Seals
	welcome             []byte
	fds                 int  // descriptors sent with the welcome: 2 normally
	notMemfd            bool // send a pipe instead of the data memfd
	split               bool // send the welcome in two pieces
	short               bool // send 20 bytes and close
	role                string
	want                string
}

func le32(b []byte, off int, v uint32) { binary.LittleEndian.PutUint32(b[off:], v) }
func le64(b []byte, off int, v uint64) { binary.LittleEndian.PutUint64(b[off:], v) }

// validFake is a ring a consumer can attach to.
func validFake(name string) *fake {
	desc, idx, payload, data, holds, table, ctl := fakeGeo(fakeSlots, fakeIndex, fakeCap)
	f := &fake{name: name, data: make([]byte, 4096), ctl: make([]byte, 4096), dataSz: data, ctlSz: ctl,
		dataSeals: shm.SealFutureWrite | shm.SealSeal, ctlSeals: shm.SealSeal, welcome: make([]byte, 64), fds: 2,
		role: "consumer", want: "FR_OK"}
	d := f.data
	le64(d, 0x00, 0x41544144524D5246) // "FRMRDATA"
	le32(d, 0x08, 2)
	le32(d, 0x0C, 4096)
	le32(d, 0x10, fakeSlots)
	le32(d, 0x14, fakeIndex)
	le64(d, 0x18, fakeCap)
	le64(d, 0x20, desc)
	le64(d, 0x28, idx)
	le64(d, 0x30, payload)
	le64(d, 0x38, data)
	le64(d, 0x40, fakeEpoch)
	le32(d, 0x48, uint32(os.Getpid()))
	le32(d, 0x4C, 64)
	le64(d, 0x50, ctl)
	le32(d, 0x64, 2)                   // hold quota
	le64(d, 0x68, uint64(time.Second)) // heartbeat period
	le32(d, 0xC0, 1)                   // running
	c := f.ctl
	le64(c, 0x00, 0x4C525443524D5246) // "FRMRCTRL"
	le32(c, 0x08, 2)
	le32(c, 0x0C, 4096)
	le32(c, 0x10, fakeSlots)
	le32(c, 0x14, 64)
	le64(c, 0x18, holds)
	le64(c, 0x20, table)
	le64(c, 0x28, ctl)
	le64(c, 0x30, fakeEpoch)
	w := f.welcome
	le64(w, 0, 0x434C4557524D5246) // "FRMRWELC"
	le32(w, 8, 2)
	le32(w, 12, 0)
	le32(w, 16, 3) // entry
	le64(w, 24, fakeEpoch)
	le64(w, 32, data)
	le64(w, 40, ctl)
	return f
}

// serve answers one attach on a socket of its own and returns the path and
// a function that waits for the connection to end.
func (f *fake) serve(t *testing.T) (string, func()) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fake.sock")
	ln, err := shm.Listen(path, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	seg := func(name string, size uint64, hdr []byte, seals shm.Seals) *shm.Segment {
		s, err := shm.CreateSegment("framering-fake-"+name, size, shm.SegmentOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Write(hdr, 0); err != nil {
			t.Fatal(err)
		}
		if seals != 0 {
			if err := s.AddSeals(seals); err != nil {
				t.Fatal(err)
			}
		}
		return s
	}
	ds := seg("data", f.dataSz, f.data, f.dataSeals)
	cs := seg("control", f.ctlSz, f.ctl, f.ctlSeals)
	files := []*os.File{ds.File(), cs.File(), cs.File()}[:f.fds]
	var pr, pw *os.File
	if f.notMemfd {
		if pr, pw, err = os.Pipe(); err != nil {
			t.Fatal(err)
		}
		files[0] = pr
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer ln.Close()
		defer ds.Close()
		defer cs.Close()
		if pr != nil {
			defer pr.Close()
			defer pw.Close()
		}
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		hello := make([]byte, 64)
		if _, err := io.ReadFull(c, hello); err != nil {
			t.Errorf("%s: no hello: %v", f.name, err)
			return
		}
		switch {
		case f.short:
			c.Send(f.welcome[:20], files...)
			return
		case f.split:
			if err := c.Send(f.welcome[:10], files...); err != nil {
				t.Error(err)
			}
			time.Sleep(20 * time.Millisecond)
			if err := c.Send(f.welcome[10:]); err != nil {
				t.Error(err)
			}
		default:
			if err := c.Send(f.welcome, files...); err != nil {
				t.Error(err)
			}
		}
		io.Copy(io.Discard, c) // until the consumer detaches (a bye, then EOF)
	}()
	return path, wg.Wait
}

// Every way a segment or a welcome can be wrong is refused with the
// documented code, without a crash, a sanitizer report or a leak.
func TestHostileSegments(t *testing.T) {
	b := cBuild(t)
	type mut func(f *fake)
	set32 := func(seg string, off int, v uint32) mut {
		return func(f *fake) {
			if seg == "data" {
				le32(f.data, off, v)
			} else if seg == "ctl" {
				le32(f.ctl, off, v)
			} else {
				le32(f.welcome, off, v)
			}
		}
	}
	set64 := func(seg string, off int, v uint64) mut {
		return func(f *fake) {
			if seg == "data" {
				le64(f.data, off, v)
			} else if seg == "ctl" {
				le64(f.ctl, off, v)
			} else {
				le64(f.welcome, off, v)
			}
		}
	}
	cases := []struct {
		name string
		want string
		m    mut
	}{
		{"valid", "FR_OK", func(f *fake) {}},
		{"valid observer", "FR_OK", func(f *fake) { f.role = "observer"; le32(f.welcome, 16, noEntry) }},
		{"welcome in two pieces", "FR_OK", func(f *fake) { f.split = true }},
		{"data magic", "FR_ERR_INCOMPATIBLE", set64("data", 0x00, 0x41544144524D5247)},
		{"data version 1", "FR_ERR_INCOMPATIBLE", set32("data", 0x08, 1)},
		{"data header size", "FR_ERR_INCOMPATIBLE", set32("data", 0x0C, 2048)},
		{"max consumers", "FR_ERR_INCOMPATIBLE", set32("data", 0x4C, 32)},
		{"0 slots", "FR_ERR_CORRUPT", set32("data", 0x10, 0)},
		{"index not a power of two", "FR_ERR_CORRUPT", set32("data", 0x14, 48)},
		{"capacity not a page multiple", "FR_ERR_CORRUPT", set64("data", 0x18, 4097)},
		{"capacity 2^40", "FR_ERR_CORRUPT", set64("data", 0x18, 1<<40)},
		{"hold quota 0", "FR_ERR_CORRUPT", set32("data", 0x64, 0)},
		{"hold quota above slots", "FR_ERR_CORRUPT", set32("data", 0x64, fakeSlots+1)},
		{"heartbeat period 0", "FR_ERR_CORRUPT", set64("data", 0x68, 0)},
		{"heartbeat period above an hour", "FR_ERR_CORRUPT", set64("data", 0x68, uint64(time.Hour)+1)},
		{"desc offset", "FR_ERR_CORRUPT", set64("data", 0x20, 4096+64)},
		{"index offset", "FR_ERR_CORRUPT", set64("data", 0x28, 0)},
		{"payload offset past the segment", "FR_ERR_CORRUPT", set64("data", 0x30, 1<<62)},
		{"data size", "FR_ERR_CORRUPT", set64("data", 0x38, 1<<20)},
		{"control size in the data header", "FR_ERR_CORRUPT", set64("data", 0x50, 4096)},
		{"layout larger than the segment", "FR_ERR_CORRUPT", func(f *fake) {
			_, _, _, data, _, _, _ := fakeGeo(fakeSlots, fakeIndex, 1<<20)
			le64(f.data, 0x18, 1<<20)
			le64(f.data, 0x38, data) // consistent with the counts, but the memfd is smaller
		}},
		{"control magic", "FR_ERR_INCOMPATIBLE", set64("ctl", 0x00, 0)},
		{"control version", "FR_ERR_INCOMPATIBLE", set32("ctl", 0x08, 3)},
		{"control slot count", "FR_ERR_CORRUPT", set32("ctl", 0x10, fakeSlots-1)},
		{"control table offset", "FR_ERR_CORRUPT", set64("ctl", 0x20, 4096)},
		{"control epoch", "FR_ERR_CORRUPT", set64("ctl", 0x30, 5)},
		{"control segment smaller than its layout", "FR_ERR_CORRUPT", func(f *fake) {
			f.ctlSz = 4096
			le64(f.welcome, 40, 4096)
		}},
		{"data epoch differs from the welcome's", "FR_ERR_PROTOCOL", set64("welcome", 24, 7)},
		{"data segment not sealed against writes", "FR_ERR_CORRUPT", func(f *fake) { f.dataSeals = shm.SealSeal }},
		{"data segment open to more seals", "FR_ERR_CORRUPT", func(f *fake) { f.dataSeals = shm.SealFutureWrite }},
		{"control segment open to more seals", "FR_ERR_CORRUPT", func(f *fake) { f.ctlSeals = 0 }},
		{"not a memfd", "FR_ERR_CORRUPT", func(f *fake) { f.notMemfd = true }},
		{"welcome's data size", "FR_ERR_PROTOCOL", set64("welcome", 32, 8192)},
		{"welcome's control size", "FR_ERR_PROTOCOL", set64("welcome", 40, 1<<30)},
		{"no descriptors", "FR_ERR_PROTOCOL", func(f *fake) { f.fds = 0 }},
		{"one descriptor", "FR_ERR_PROTOCOL", func(f *fake) { f.fds = 1 }},
		{"three descriptors", "FR_ERR_PROTOCOL", func(f *fake) { f.fds = 3 }},
		{"entry 64", "FR_ERR_PROTOCOL", set32("welcome", 16, 64)},
		{"no entry for a consumer", "FR_ERR_PROTOCOL", set32("welcome", 16, noEntry)},
		{"an entry for an observer", "FR_ERR_PROTOCOL", func(f *fake) { f.role = "observer" }},
		{"welcome magic", "FR_ERR_INCOMPATIBLE", set64("welcome", 0, 0x45544F4E524D5246)},
		{"welcome version 1", "FR_ERR_INCOMPATIBLE", set32("welcome", 8, 1)},
		{"short welcome", "FR_ERR_PROTOCOL", func(f *fake) { f.short = true }},
		{"status incompatible", "FR_ERR_INCOMPATIBLE", set32("welcome", 12, 1)},
		{"status denied", "FR_ERR_DENIED", set32("welcome", 12, 2)},
		{"status full", "FR_ERR_FULL", set32("welcome", 12, 3)},
		{"status bad request", "FR_ERR_REFUSED", set32("welcome", 12, 4)},
		{"status closing", "FR_ERR_CLOSED", set32("welcome", 12, 5)},
		{"unknown status", "FR_ERR_REFUSED", set32("welcome", 12, 77)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := validFake(tc.name)
			tc.m(f)
			path, wait := f.serve(t)
			pr := startC(t, b, "frtest", "attach", path, f.role)
			got := pr.expect(t, "attach")
			if code := pr.finish(t); code != 0 {
				t.Fatalf("frtest exited %d\nstderr:\n%s", code, pr.errText())
			}
			wait()
			if got["rc"] != tc.want {
				t.Fatalf("attach: %s (%s), want %s", got["rc"], strings.Join(pr.all, " "), tc.want)
			}
		})
	}
}

// A producer that scribbles on its data segment (descriptors, index,
// published, the header) after the consumer validated it: the C reader
// never crashes or reads outside the mapping, and every call returns.
func TestHostileDataSegmentWhileReading(t *testing.T) {
	b := cBuild(t)
	f := validFake("scribbled")
	path := filepath.Join(t.TempDir(), "scribble.sock")
	ln, err := shm.Listen(path, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ds, err := shm.CreateSegment("framering-fake-data", f.dataSz, shm.SegmentOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	m, err := ds.Map(true) // writable, made before the FUTURE_WRITE seal
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	copy(m.Bytes(), f.data)
	if err := ds.AddSeals(f.dataSeals); err != nil {
		t.Fatal(err)
	}
	cs, err := shm.CreateSegment("framering-fake-control", f.ctlSz, shm.SegmentOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	cs.Write(f.ctl, 0)
	cs.AddSeals(f.ctlSeals)
	served := make(chan struct{})
	go func() {
		defer close(served)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.ReadFull(c, make([]byte, 64))
		c.Send(f.welcome, ds.File(), cs.File())
		io.Copy(io.Discard, c)
	}()
	pr := startC(t, b, "frtest", "chaos", path, "1500") // ms
	pr.expect(t, "attached")
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		desc, idx, payload, _, _, _, _ := fakeGeo(fakeSlots, fakeIndex, fakeCap)
		w := m.Bytes()
		rng := rand.New(rand.NewPCG(7, 8))
		for {
			select {
			case <-stop:
				return
			default:
			}
			switch rng.IntN(5) {
			case 0: // a plausible frame: index entry, descriptor, published
				seq := 1 + rng.Uint64N(100)
				k := uint64(rng.IntN(fakeSlots + 2)) // some slots out of range
				le64(w, int(idx+8*(seq%fakeIndex)), seq<<16|k)
				if k < fakeSlots {
					d := int(desc + 128*k)
					le64(w, d, rng.Uint64()&^1)               // an even generation
					le64(w, d+8, seq)                         // seq
					le64(w, d+0x30, fakeCap-1+rng.Uint64N(3)) // a length around the bound
				}
				le64(w, 0x80, seq+rng.Uint64N(3))
			case 1: // any word of the header, descriptors or index
				off := 8 * rng.IntN(int(payload/8))
				le64(w, off, rng.Uint64())
			case 2: // the ring and source state
				le32(w, 0xC0, uint32(rng.IntN(4)))
				le32(w, 0xC4, uint32(rng.IntN(6)))
			default: // odd generations (deciding) with seq intact
				k := uint64(rng.IntN(fakeSlots))
				le64(w, int(desc+128*k), rng.Uint64()|1)
			}
		}
	}()
	res := pr.expect(t, "done")
	close(stop)
	<-done
	if code := pr.finish(t); code != 0 {
		t.Fatalf("frtest chaos exited %d: %v\nstderr:\n%s", code, res, pr.errText())
	}
	<-served // the consumer detached: the connection ended
	t.Logf("chaos: %v", res)
	if num(t, res, "calls") < 100 || num(t, res, "violations") != 0 || num(t, res, "held") != 0 {
		t.Fatalf("chaos: %v", res)
	}
}

func (f *fake) String() string { return fmt.Sprintf("fake %s", f.name) }
