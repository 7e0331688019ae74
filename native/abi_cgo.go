//go:build cgo

package native

// Go mirrors of the C structs that cross the boundary (frsdk.h).
//
// Invariant: each mirror has its C struct's size (asserted at compile time
// below) and field offsets (asserted by TestCABILayout against the C
// compiler's offsetof, reported by fr_abi_*). Fields are fixed-width and
// in C order; padding is explicit.

/*
#include "frsdk.h"
*/
import "C"

import (
	"unsafe"

	"github.com/framering/framering/frame"
)

// cConfig mirrors fr_config.
type cConfig struct {
	Width     uint32
	Height    uint32
	Stride    uint32
	Format    uint32
	FrameRate float64
	Flags     uint32
	Reserved  uint32
}

// cFrameInfo mirrors fr_frame_info.
type cFrameInfo struct {
	Buffer      uint64
	FrameID     uint64
	TimestampNS uint64
	Size        uint64
	Width       uint32
	Height      uint32
	Stride      uint32
	Format      uint32
	Status      int32
	Reserved    uint32
}

// cCounters mirrors fr_counters.
type cCounters struct {
	Delivered   uint64
	Underruns   uint64
	Discarded   uint64
	NextFrameID uint64
	Queued      uint32
	Awaiting    uint32
	Held        uint32
	Announced   uint32
}

// Sizes equal the C compiler's (index 0 iff equal).
var (
	_ = [1]struct{}{}[unsafe.Sizeof(cConfig{})^C.sizeof_fr_config]
	_ = [1]struct{}{}[unsafe.Sizeof(cFrameInfo{})^C.sizeof_fr_frame_info]
	_ = [1]struct{}{}[unsafe.Sizeof(cCounters{})^C.sizeof_fr_counters]
)

const flagDefects = C.FR_CONFIG_DEFECTS

// toC converts a validated Config (every size fits uint32).
func (cfg Config) toC() cConfig {
	c := cConfig{
		Width:     uint32(cfg.Geometry.Width),
		Height:    uint32(cfg.Geometry.Height),
		Stride:    uint32(cfg.Geometry.Stride),
		Format:    uint32(cfg.Geometry.Format),
		FrameRate: cfg.Rate,
	}
	if cfg.Defects {
		c.Flags |= flagDefects
	}
	return c
}

func (c *cConfig) config() Config {
	return Config{
		Geometry: frame.Geometry{Width: int(c.Width), Height: int(c.Height), Stride: int(c.Stride), Format: frame.Format(c.Format)},
		Rate:     c.FrameRate,
		Defects:  c.Flags&flagDefects != 0,
	}
}

func (c *cFrameInfo) info() FrameInfo {
	return FrameInfo{
		Buffer:    BufferID(c.Buffer),
		FrameID:   c.FrameID,
		Timestamp: int64(c.TimestampNS),
		Status:    FrameStatus(c.Status),
		Geometry:  frame.Geometry{Width: int(c.Width), Height: int(c.Height), Stride: int(c.Stride), Format: frame.Format(c.Format)},
		Length:    int(min(c.Size, uint64(maxInt))),
	}
}

const maxInt = int(^uint(0) >> 1)

func (c *cCounters) counters() Counters {
	return Counters{
		Delivered:   c.Delivered,
		Underruns:   c.Underruns,
		Discarded:   c.Discarded,
		NextFrameID: c.NextFrameID,
		Queued:      int(c.Queued),
		Awaiting:    int(c.Awaiting),
		Held:        int(c.Held),
		Announced:   int(c.Announced),
	}
}

// cABI returns the C compiler's sizes and offsets, by name
// ("sizeof(fr_config)", "offsetof(fr_config, width)").
func cABI() map[string]uint64 {
	m := make(map[string]uint64)
	for i := range frABICount() {
		m[frABIName(i)] = frABIValue(i)
	}
	return m
}
