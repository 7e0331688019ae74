//go:build cgo

package native

import (
	"bytes"
	"errors"
	"maps"
	"slices"
	"strconv"
	"testing"
	"unsafe"

	"github.com/framering/framering/frame"
)

// TestCABILayout compares every size and offset the C compiler reports for
// the boundary structs with the Go mirrors'.
func TestCABILayout(t *testing.T) {
	var (
		cfg  cConfig
		info cFrameInfo
		cnt  cCounters
	)
	goABI := map[string]uintptr{
		"sizeof(fr_config)":                     unsafe.Sizeof(cfg),
		"offsetof(fr_config, width)":            unsafe.Offsetof(cfg.Width),
		"offsetof(fr_config, height)":           unsafe.Offsetof(cfg.Height),
		"offsetof(fr_config, stride)":           unsafe.Offsetof(cfg.Stride),
		"offsetof(fr_config, format)":           unsafe.Offsetof(cfg.Format),
		"offsetof(fr_config, frame_rate)":       unsafe.Offsetof(cfg.FrameRate),
		"offsetof(fr_config, flags)":            unsafe.Offsetof(cfg.Flags),
		"offsetof(fr_config, reserved)":         unsafe.Offsetof(cfg.Reserved),
		"sizeof(fr_frame_info)":                 unsafe.Sizeof(info),
		"offsetof(fr_frame_info, buffer)":       unsafe.Offsetof(info.Buffer),
		"offsetof(fr_frame_info, frame_id)":     unsafe.Offsetof(info.FrameID),
		"offsetof(fr_frame_info, timestamp_ns)": unsafe.Offsetof(info.TimestampNS),
		"offsetof(fr_frame_info, size)":         unsafe.Offsetof(info.Size),
		"offsetof(fr_frame_info, width)":        unsafe.Offsetof(info.Width),
		"offsetof(fr_frame_info, height)":       unsafe.Offsetof(info.Height),
		"offsetof(fr_frame_info, stride)":       unsafe.Offsetof(info.Stride),
		"offsetof(fr_frame_info, format)":       unsafe.Offsetof(info.Format),
		"offsetof(fr_frame_info, status)":       unsafe.Offsetof(info.Status),
		"offsetof(fr_frame_info, reserved)":     unsafe.Offsetof(info.Reserved),
		"sizeof(fr_counters)":                   unsafe.Sizeof(cnt),
		"offsetof(fr_counters, delivered)":      unsafe.Offsetof(cnt.Delivered),
		"offsetof(fr_counters, underruns)":      unsafe.Offsetof(cnt.Underruns),
		"offsetof(fr_counters, discarded)":      unsafe.Offsetof(cnt.Discarded),
		"offsetof(fr_counters, next_frame_id)":  unsafe.Offsetof(cnt.NextFrameID),
		"offsetof(fr_counters, queued)":         unsafe.Offsetof(cnt.Queued),
		"offsetof(fr_counters, awaiting)":       unsafe.Offsetof(cnt.Awaiting),
		"offsetof(fr_counters, held)":           unsafe.Offsetof(cnt.Held),
		"offsetof(fr_counters, announced)":      unsafe.Offsetof(cnt.Announced),
		"sizeof(fr_handle)":                     unsafe.Sizeof(uint64(0)),
		"sizeof(fr_buffer_id)":                  unsafe.Sizeof(BufferID(0)),
		"sizeof(fr_status)":                     unsafe.Sizeof(Status(0)),
	}
	c := cABI()
	if got, want := slices.Sorted(maps.Keys(c)), slices.Sorted(maps.Keys(goABI)); !slices.Equal(got, want) {
		t.Fatalf("C reports %v\nGo mirrors %v", got, want)
	}
	for name, v := range c {
		if uint64(goABI[name]) != v {
			t.Errorf("%s: C %d, Go %d", name, v, goABI[name])
		}
	}
}

// TestStatusStrings: Status.Error is fr_status_string.
func TestStatusStrings(t *testing.T) {
	for s := Status(1); s >= -20; s-- {
		c, g := frStatusString(s), s.Error()
		if c == "unknown status" {
			if g != "unknown status "+strconv.Itoa(int(s)) {
				t.Errorf("%d: Go %q for an unknown status", s, g)
			}
			continue
		}
		if c != g {
			t.Errorf("%d: C %q, Go %q", s, c, g)
		}
	}
	if !errors.Is(StatusGeometry, frame.ErrGeometry) || !errors.Is(StatusFormat, frame.ErrFormat) || errors.Is(StatusBusy, frame.ErrGeometry) {
		t.Fatal("Status.Is")
	}
}

// TestCPatternMatchesGenerator compares the C pattern writer with
// frame.Generator.Fill directly, for geometries and frame ids a stream
// does not reach: ids near 2^64 (wrapping arithmetic), frames too small
// for defects, the exact defect thresholds, maximal padding.
func TestCPatternMatchesGenerator(t *testing.T) {
	ids := []uint64{0, 1, 2, 3, 4, 5, 127, 128, 1 << 32, 1<<63 - 1, 1 << 63, ^uint64(0) - 2, ^uint64(0) - 1, ^uint64(0)}
	geoms := []struct{ w, h, pad int }{
		{8, 4, 0},    // 32 bytes: only the stamp, for Mono8
		{53, 40, 0},  // one pixel too narrow for defects
		{54, 18, 0},  // the smallest frame with defects
		{54, 17, 1},  // one row too short
		{160, 90, 7}, // padded
		{333, 77, 61},
		{1, 64, 31},
		{2, 64, 31},  // the narrowest YUV422 frame
		{52, 40, 0},  // too narrow for defects, even
		{55, 19, 3},  // odd width: packed rows end inside a byte
		{101, 30, 1}, // Mono10p: 1010 bits, a 2-bit tail
	}
	for _, f := range frame.Formats() {
		for _, gm := range geoms {
			for _, defects := range []bool{false, true} {
				cfg := Config{Geometry: frame.Packed(gm.w, gm.h, f), Defects: defects}
				cfg.Geometry.Stride += gm.pad
				if cfg.validate() != StatusOK {
					continue
				}
				gen, err := frame.NewGenerator(cfg.Geometry, defects)
				if err != nil {
					t.Fatal(err)
				}
				c := cfg.toC()
				size := cfg.Geometry.Size()
				got, wantB := make([]byte, size+5), make([]byte, size)
				for _, id := range ids {
					for i := range got {
						got[i] = 0x5A
					}
					if st := frFillPattern(&c, got, id); st != StatusOK {
						t.Fatalf("fill: %v", st)
					}
					if err := gen.Fill(wantB, id); err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(got[:size], wantB) {
						i := 0
						for got[i] == wantB[i] {
							i++
						}
						t.Fatalf("%v %dx%d+%d defects=%v id %d: first difference at byte %d (C %#x, Go %#x)",
							f, gm.w, gm.h, gm.pad, defects, id, i, got[i], wantB[i])
					}
					if !bytes.Equal(got[size:], []byte{0x5A, 0x5A, 0x5A, 0x5A, 0x5A}) {
						t.Fatalf("C wrote past the frame")
					}
				}
			}
		}
	}
	c := Config{Geometry: frame.Packed(8, 4, frame.Mono8)}.toC()
	if st := frFillPattern(&c, make([]byte, 31), 0); st != StatusBufferSize {
		t.Fatalf("short buffer: %v", st)
	}
}

// TestCValidationMatchesGo: the C SDK accepts exactly the geometries Go's
// format table accepts, with the same status, for every format of the
// table and for PFNC codes outside it (Mono8 signed, Mono14, GigE Vision
// BayerGR12Packed, Aravis custom).
func TestCValidationMatchesGo(t *testing.T) {
	codes := append(frame.Formats(), 0, 0x01080002, 0x01100025, 0x010C002A, 0x810C0001)
	for _, f := range codes {
		for _, w := range []int{1, 2, 3, 4, 5, 64, 65} {
			rb := f.RowBytes(w)
			for _, stride := range []int{rb - 1, rb, rb + 1, 2 * w, 3 * w} {
				cfg := Config{Geometry: frame.Geometry{Width: w, Height: 40, Stride: stride, Format: f}}
				want := cfg.validate()
				c := cfg.toC()
				got := frFillPattern(&c, make([]byte, max(0, stride*40)), 0)
				if got != want {
					t.Fatalf("%v %dx40 stride %d: C %v, Go %v", f, w, stride, got, want)
				}
			}
		}
	}
}
