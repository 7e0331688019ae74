package ringbuf

import (
	"encoding/binary"
	"errors"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/framering/framering/loss"
)

// specTables parses the field tables of docs/LAYOUT.md sections 3.1, 3.2,
// 4.1 and 4.3: each row's offset, size and name, by section.
func specTables(t *testing.T) map[string]map[string][2]uint64 {
	t.Helper()
	doc, err := os.ReadFile("../docs/LAYOUT.md")
	if err != nil {
		t.Fatal(err)
	}
	sections := map[string]string{"### 3.1 ": "data", "### 3.2 ": "desc", "### 4.1 ": "control", "### 4.3 ": "entry"}
	row := regexp.MustCompile("^\\| (0x[0-9A-Fa-f]+) \\| ([0-9]+) \\| [^|]*\\| `([a-z_]+)` \\|")
	out := map[string]map[string][2]uint64{}
	cur := ""
	for _, line := range strings.Split(string(doc), "\n") {
		if strings.HasPrefix(line, "#") {
			cur = ""
			for prefix, name := range sections {
				if strings.HasPrefix(line, prefix) {
					cur = name
				}
			}
			continue
		}
		if m := row.FindStringSubmatch(line); m != nil && cur != "" {
			off, _ := strconv.ParseUint(m[1], 0, 64)
			size, _ := strconv.ParseUint(m[2], 10, 64)
			if out[cur] == nil {
				out[cur] = map[string][2]uint64{}
			}
			out[cur][m[3]] = [2]uint64{off, size}
		}
	}
	return out
}

// Every field docs/LAYOUT.md specifies is at the offset this package uses,
// and every named field of the spec has its Go constant: a change to
// either side fails here.
func TestLayoutOffsets(t *testing.T) {
	goOffsets := map[string]map[string]uint64{
		"data": {"magic": offMagic, "version": offVersion, "header_size": offHeaderSize, "slot_count": offSlotCount,
			"index_count": offIndexCount, "slot_capacity": offSlotCapacity, "desc_offset": offDescOffset,
			"index_offset": offIndexOffset, "payload_offset": offPayloadOffset, "data_size": offDataSize, "epoch": offEpoch,
			"producer_pid": offProducerPid, "max_consumers": offMaxConsumers, "control_size": offControlSize,
			"created_unix_ns": offCreatedUnixNs, "flags": offFlags, "hold_quota": offHoldQuota,
			"heartbeat_period_ns": offHeartbeatEvery, "evict_after_ns": offEvictAfter, "published": offPublished,
			"state": offState, "source_state": offSourceState, "wake": offWake, "evictions": offEvictions,
			"detaches": offDetaches, "reclaims": offReclaims, "reclaimed_holds": offReclaimedHold,
			"revoked_holds": offRevokedHold, "start_mono_ns": offStartMonoNs, "heartbeat_ns": offHeartbeatNs,
			"copies": offCopies, "drops": offDrops},
		"desc": {"gen": dGen, "seq": dSeq, "frame_id": dFrameID, "timestamp": dTimestamp, "width": dWidth, "height": dHeight,
			"stride": dStride, "format": dFormat, "length": dLength, "flags": dFlags, "device_timestamp": dDeviceTimestamp,
			"origin_epoch": dOriginEpoch, "origin_seq": dOriginSeq, "publish_ns": dPublishNs, "drops_before": dDropsBefore},
		"control": {"magic": cMagic, "version": cVersion, "header_size": cHeaderSize, "slot_count": cSlotCount,
			"max_consumers": cMaxConsumers, "holds_offset": cHoldsOffset, "table_offset": cTableOffset,
			"control_size": cControlSize, "epoch": cEpoch, "waiters": cWaiters, "attached": cAttached},
		"entry": {"state": eState, "mode": eMode, "pid": ePid, "uid": eUID, "pidfd_ino": ePidfdIno,
			"attach_unix_ns": eAttachNs, "name": eName, "cursor": eCursor, "delivered": eDelivered, "skipped": eSkipped,
			"missed": eMissed, "held": eHeld, "last_seq": eLastSeq, "latency_ns": eLatencyNs, "revoked_seen": eRevokedSeen,
			"block_drops": eBlockDrops, "evict_reason": eEvictReason, "revoked_holds": eRevokedHolds},
	}
	spec := specTables(t)
	for table, fields := range goOffsets {
		if len(spec[table]) != len(fields) {
			t.Errorf("%s: the spec names %d fields, this package %d", table, len(spec[table]), len(fields))
		}
		for name, off := range fields {
			sv, ok := spec[table][name]
			if !ok {
				t.Errorf("%s.%s: not in docs/LAYOUT.md", table, name)
			} else if sv[0] != off {
				t.Errorf("%s.%s at %#x, spec says %#x", table, name, off, sv[0])
			}
		}
	}
	if spec["data"]["drops"][1] != 8*loss.Max || spec["desc"]["drops_before"][1] != 8*dropsBeforeWords {
		t.Errorf("drop table sizes: spec %v", spec["data"]["drops"])
	}
	if descSize != 128 || holdSize != 64 || entrySize != 256 || headerSize != 4096 || msgSize != 64 {
		t.Fatal("record sizes changed")
	}
}

// The worked example of docs/LAYOUT.md section 5.
func TestGeometryExample(t *testing.T) {
	g, err := newGeometry(8, 76800, 0)
	if err != nil {
		t.Fatal(err)
	}
	if g.capacity != 77824 || g.indexCount != 64 || g.descOffset != 0x1000 || g.indexOffset != 0x1400 ||
		g.payloadOffset != 0x2000 || g.dataSize != 0x9A000 || g.holdsOffset != 0x1000 || g.tableOffset != 0x1200 ||
		g.controlSize != 0x6000 {
		t.Fatalf("%+v", g)
	}
}

func TestGeometry(t *testing.T) {
	g, err := newGeometry(8, 1000, 0)
	if err != nil {
		t.Fatal(err)
	}
	if g.capacity != 4096 || g.indexCount != 64 || g.descOffset != 4096 || g.indexOffset != 4096+8*descSize {
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
	g.holdQuota, g.heartbeat, g.evictAfter = 2, 100*time.Millisecond, 2*time.Second
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
		{"version", mut(data, offVersion, 3), g.dataSize, ErrIncompatible},
		{"header size", mut(data, offHeaderSize, 8192), g.dataSize, ErrIncompatible},
		{"max consumers", mut(data, offMaxConsumers, 128), g.dataSize, ErrIncompatible},
		{"zero slots", mut(data, offSlotCount, 0), g.dataSize, ErrCorrupt},
		{"more slots", mut(data, offSlotCount, 5), g.dataSize, ErrCorrupt},
		{"huge slots", mut(data, offSlotCount, 0xffffffff), g.dataSize, ErrCorrupt},
		{"index not pow2", mut(data, offIndexCount, 65), g.dataSize, ErrCorrupt},
		{"capacity unaligned", mut(data, offSlotCapacity, 8193), g.dataSize, ErrCorrupt},
		{"payload offset", mut(data, offPayloadOffset, 0), g.dataSize, ErrCorrupt},
		{"data size", mut(data, offDataSize, 1<<31), g.dataSize, ErrCorrupt},
		{"zero hold quota", mut(data, offHoldQuota, 0), g.dataSize, ErrCorrupt},
		{"hold quota above slots", mut(data, offHoldQuota, 5), g.dataSize, ErrCorrupt},
		{"zero heartbeat period", mut(mut(data, offHeartbeatEvery, 0), offHeartbeatEvery+4, 0), g.dataSize, ErrCorrupt},
		{"v1 segment", mut(data, offVersion, 1), g.dataSize, ErrIncompatible},
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
	}{{0, 1, ErrIncompatible}, {8, 1, ErrIncompatible}, {8, 3, ErrIncompatible}, {12, 7, ErrProtocol}, {16, 9, ErrProtocol}, {24, 0x01, ErrProtocol}} {
		m := b
		binary.LittleEndian.PutUint32(m[c.off:], c.v)
		if _, err := decodeHello(m[:]); !errors.Is(err, c.err) {
			t.Errorf("hello off %d: %v", c.off, err)
		}
	}
	if _, err := decodeHello(b[:10]); !errors.Is(err, ErrProtocol) {
		t.Error("short hello accepted")
	}
	welcome{status: statusOK, entry: 3, epoch: 7, dataFileSize: 1 << 20, controlFileSize: 1 << 16}.encode(b[:])
	w, err := decodeWelcome(b[:])
	if err != nil || w.entry != 3 || w.epoch != 7 {
		t.Fatalf("%+v %v", w, err)
	}
	binary.LittleEndian.PutUint32(b[16:], 64)
	if _, err := decodeWelcome(b[:]); !errors.Is(err, ErrProtocol) {
		t.Errorf("entry 64 accepted: %v", err)
	}
	encodeNote(b[:], noteEvicted, uint32(EvictQuota))
	if k, reason, err := decodeNote(b[:]); err != nil || k != noteEvicted || reason != uint32(EvictQuota) {
		t.Fatal(k, reason, err)
	}
	encodeBye(b[:])
	if !isBye(b[:]) || isBye(b[:63]) {
		t.Fatal("bye round trip")
	}
	if binary.LittleEndian.Uint64(b[:]) != 0x21455942524D5246 {
		t.Fatalf("bye magic %#x, spec says 0x21455942524D5246", binary.LittleEndian.Uint64(b[:]))
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
