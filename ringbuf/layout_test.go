package ringbuf

import (
	"encoding/binary"
	"errors"
	"testing"
)

// The offsets docs/LAYOUT.md specifies. A change to either side fails here.
func TestLayoutOffsets(t *testing.T) {
	want := map[string][2]uint64{
		"magic": {offMagic, 0x00}, "version": {offVersion, 0x08}, "header_size": {offHeaderSize, 0x0C},
		"slot_count": {offSlotCount, 0x10}, "index_count": {offIndexCount, 0x14}, "slot_capacity": {offSlotCapacity, 0x18},
		"desc_offset": {offDescOffset, 0x20}, "index_offset": {offIndexOffset, 0x28}, "payload_offset": {offPayloadOffset, 0x30},
		"data_size": {offDataSize, 0x38}, "epoch": {offEpoch, 0x40}, "producer_pid": {offProducerPid, 0x48},
		"max_consumers": {offMaxConsumers, 0x4C}, "control_size": {offControlSize, 0x50}, "created": {offCreatedUnixNs, 0x58},
		"flags": {offFlags, 0x60}, "published": {offPublished, 0x80}, "state": {offState, 0xC0}, "wake": {offWake, 0x100},
		"drop_no_slot": {offDropNoSlot, 0x140}, "heartbeat": {offHeartbeatNs, 0x178},
		"d.gen": {dGen, 0}, "d.seq": {dSeq, 8}, "d.frame_id": {dFrameID, 16}, "d.timestamp": {dTimestamp, 24},
		"d.width": {dWidth, 32}, "d.height": {dHeight, 36}, "d.stride": {dStride, 40}, "d.format": {dFormat, 44},
		"d.length": {dLength, 48}, "d.flags": {dFlags, 56},
		"c.waiters": {cWaiters, 0x40}, "c.attached": {cAttached, 0x80}, "c.epoch": {cEpoch, 0x30},
		"e.state": {eState, 0}, "e.name": {eName, 0x20}, "e.cursor": {eCursor, 0x40}, "e.block_drops": {eBlockDrops, 0x80},
	}
	for name, v := range want {
		if v[0] != v[1] {
			t.Errorf("%s at %#x, spec says %#x", name, v[0], v[1])
		}
	}
	if descSize != 64 || holdSize != 64 || entrySize != 256 || headerSize != 4096 || msgSize != 64 {
		t.Fatal("record sizes changed")
	}
}

func TestGeometry(t *testing.T) {
	g, err := newGeometry(8, 1000, 0)
	if err != nil {
		t.Fatal(err)
	}
	if g.capacity != 4096 || g.indexCount != 64 || g.descOffset != 4096 || g.indexOffset != 4096+8*64 {
		t.Fatalf("%+v", g)
	}
	if g.payloadOffset%pageSize != 0 || g.payloadOffset < g.indexOffset+64*8 || g.dataSize != g.payloadOffset+8*4096 {
		t.Fatalf("%+v", g)
	}
	for k := uint32(0); k < g.slots; k++ {
		if g.desc(k)%cacheLine != 0 || g.hold(k)%cacheLine != 0 || g.payload(k)%pageSize != 0 {
			t.Fatalf("slot %d misaligned", k)
		}
	}
	if g.controlSize < g.tableOffset+MaxConsumers*entrySize {
		t.Fatal("table outside control segment")
	}
	for _, c := range []struct{ slots, cap, idx int }{{0, 10, 0}, {MaxSlots + 1, 10, 0}, {4, 0, 0}, {4, MaxSlotCapacity + 1, 0}, {8, 10, 4}} {
		if _, err := newGeometry(c.slots, uint64(c.cap), c.idx); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: %v", c, err)
		}
	}
}

func validHeaders(t testing.TB) (geometry, []byte, []byte) {
	g, err := newGeometry(4, 8192, 0)
	if err != nil {
		t.Fatal(err)
	}
	g.epoch, g.producerPid = 0xfeedface, 42
	data := make([]byte, headerSize)
	ctl := make([]byte, headerSize)
	g.encodeData(data, 1)
	g.encodeControl(ctl)
	return g, data, ctl
}

func TestDecodeHeaders(t *testing.T) {
	g, data, ctl := validHeaders(t)
	got, err := decodeDataHeader(data, g.dataSize)
	if err != nil {
		t.Fatal(err)
	}
	if got != g {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, g)
	}
	if err := decodeControlHeader(ctl, g.controlSize, got); err != nil {
		t.Fatal(err)
	}
	mut := func(b []byte, off int, v uint32) []byte {
		c := append([]byte(nil), b...)
		binary.LittleEndian.PutUint32(c[off:], v)
		return c
	}
	cases := []struct {
		name string
		b    []byte
		size uint64
		want error
	}{
		{"short", data[:100], g.dataSize, ErrCorrupt},
		{"truncated segment", data, g.dataSize - 1, ErrCorrupt},
		{"magic", mut(data, offMagic, 1), g.dataSize, ErrIncompatible},
		{"version", mut(data, offVersion, 2), g.dataSize, ErrIncompatible},
		{"header size", mut(data, offHeaderSize, 8192), g.dataSize, ErrIncompatible},
		{"max consumers", mut(data, offMaxConsumers, 128), g.dataSize, ErrIncompatible},
		{"zero slots", mut(data, offSlotCount, 0), g.dataSize, ErrCorrupt},
		{"more slots", mut(data, offSlotCount, 5), g.dataSize, ErrCorrupt},
		{"huge slots", mut(data, offSlotCount, 0xffffffff), g.dataSize, ErrCorrupt},
		{"index not pow2", mut(data, offIndexCount, 65), g.dataSize, ErrCorrupt},
		{"capacity unaligned", mut(data, offSlotCapacity, 8193), g.dataSize, ErrCorrupt},
		{"payload offset", mut(data, offPayloadOffset, 0), g.dataSize, ErrCorrupt},
		{"data size", mut(data, offDataSize, 1<<31), g.dataSize, ErrCorrupt},
	}
	for _, c := range cases {
		if _, err := decodeDataHeader(c.b, c.size); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
	ctlCases := []struct {
		name string
		b    []byte
		want error
	}{
		{"magic", mut(ctl, cMagic, 3), ErrIncompatible},
		{"version", mut(ctl, cVersion, 9), ErrIncompatible},
		{"slots", mut(ctl, cSlotCount, 9), ErrCorrupt},
		{"epoch", mut(ctl, cEpoch, 9), ErrCorrupt},
		{"table", mut(ctl, cTableOffset, 9), ErrCorrupt},
	}
	for _, c := range ctlCases {
		if err := decodeControlHeader(c.b, g.controlSize, got); !errors.Is(err, c.want) {
			t.Errorf("control %s: got %v, want %v", c.name, err, c.want)
		}
	}
	if err := decodeControlHeader(ctl, g.controlSize-1, got); !errors.Is(err, ErrCorrupt) {
		t.Errorf("short control: %v", err)
	}
}

// Every single-byte corruption of a valid header is either harmless (a
// field the decoder does not validate, such as the epoch or creation time)
// or reported as ErrCorrupt/ErrIncompatible; none panics.
func TestDataHeaderByteFlips(t *testing.T) {
	g, data, _ := validHeaders(t)
	for off := 0; off < 0x68; off++ {
		for _, x := range []byte{0x01, 0x80, 0xff} {
			c := append([]byte(nil), data...)
			c[off] ^= x
			got, err := decodeDataHeader(c, g.dataSize)
			if err == nil {
				if got.dataSize > g.dataSize || got.slots != g.slots || got.capacity != g.capacity {
					t.Fatalf("flip %#x at %#x accepted an inconsistent header %+v", x, off, got)
				}
				continue
			}
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrIncompatible) {
				t.Fatalf("flip at %#x: %v", off, err)
			}
		}
	}
}

func TestMessages(t *testing.T) {
	var b [msgSize]byte
	hello{version: Version, role: RoleConsumer, mode: Lossless, name: "archiver"}.encode(b[:])
	h, err := decodeHello(b[:])
	if err != nil || h.name != "archiver" || h.mode != Lossless || h.role != RoleConsumer {
		t.Fatalf("%+v %v", h, err)
	}
	for _, c := range []struct {
		off int
		v   uint32
		err error
	}{{0, 1, ErrIncompatible}, {8, 2, ErrIncompatible}, {12, 7, ErrCorrupt}, {16, 9, ErrCorrupt}, {24, 0x01, ErrCorrupt}} {
		m := b
		binary.LittleEndian.PutUint32(m[c.off:], c.v)
		if _, err := decodeHello(m[:]); !errors.Is(err, c.err) {
			t.Errorf("hello off %d: %v", c.off, err)
		}
	}
	if _, err := decodeHello(b[:10]); !errors.Is(err, ErrCorrupt) {
		t.Error("short hello accepted")
	}
	welcome{status: statusOK, entry: 3, epoch: 7, dataSize: 1 << 20, controlSize: 1 << 16}.encode(b[:])
	w, err := decodeWelcome(b[:])
	if err != nil || w.entry != 3 || w.epoch != 7 {
		t.Fatalf("%+v %v", w, err)
	}
	binary.LittleEndian.PutUint32(b[16:], 64)
	if _, err := decodeWelcome(b[:]); !errors.Is(err, ErrCorrupt) {
		t.Errorf("entry 64 accepted: %v", err)
	}
	encodeNote(b[:], noteEvicted)
	if k, err := decodeNote(b[:]); err != nil || k != noteEvicted {
		t.Fatal(k, err)
	}
}

func FuzzDecodeDataHeader(f *testing.F) {
	g, data, ctl := validHeaders(f)
	f.Add(data, g.dataSize, ctl)
	f.Add(data[:64], uint64(4096), ctl[:10])
	f.Fuzz(func(t *testing.T, b []byte, size uint64, c []byte) {
		if len(b) < headerSize {
			b = append(b, make([]byte, headerSize-len(b))...)
		}
		got, err := decodeDataHeader(b, size)
		if err != nil {
			if got != (geometry{}) {
				t.Fatal("error with a result")
			}
			return
		}
		// An accepted header describes regions inside the segment, in order.
		if got.dataSize > size || got.descOffset+uint64(got.slots)*descSize > got.indexOffset ||
			got.indexOffset+uint64(got.indexCount)*8 > got.payloadOffset ||
			got.payloadOffset+uint64(got.slots)*got.capacity != got.dataSize ||
			got.indexCount < got.slots || got.indexCount&(got.indexCount-1) != 0 {
			t.Fatalf("accepted inconsistent header %+v for %d bytes", got, size)
		}
		if len(c) < headerSize {
			c = append(c, make([]byte, headerSize-len(c))...)
		}
		_ = decodeControlHeader(c, size, got)
	})
}

func FuzzDecodeMessages(f *testing.F) {
	var b [msgSize]byte
	hello{version: Version, role: RoleConsumer, mode: Lossy, name: "x"}.encode(b[:])
	f.Add(b[:])
	welcome{status: statusOK, entry: 1}.encode(b[:])
	f.Add(b[:])
	f.Fuzz(func(t *testing.T, m []byte) {
		if h, err := decodeHello(m); err == nil && (len(h.name) > maxNameLen || (h.role != RoleConsumer && h.role != RoleObserver)) {
			t.Fatalf("accepted %+v", h)
		}
		if w, err := decodeWelcome(m); err == nil && w.status == statusOK && w.entry != noEntry && w.entry >= MaxConsumers {
			t.Fatalf("accepted %+v", w)
		}
		decodeNote(m)
	})
}
