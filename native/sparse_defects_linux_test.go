package native_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/framering/framering/frame"
	"github.com/framering/framering/native"
)

// TestSyntheticSparseDefects: with DefectEvery, only frames whose id is a
// multiple of it carry the pattern's defects (and the defects flag); the
// others are the plain pattern.
func TestSyntheticSparseDefects(t *testing.T) {
	cfg := cfgOf(96, 32, 0, frame.Mono8, 0, true)
	cfg.DefectEvery = 4
	e := newEnv(t, native.KindSynthetic, cfg)
	_, mem := e.buffers(3, 0, true)
	if err := e.g.Start(); err != nil {
		t.Fatal(err)
	}
	plain := cfg
	plain.Defects = false
	withDefects := 0
	for n := 0; n < 20; n++ {
		f, err := e.g.Dequeue(context.Background(), hangGuard)
		if err != nil {
			t.Fatal(err)
		}
		info := mustInfo(t, f)
		ref := plain
		if info.FrameID%4 == 0 {
			ref = cfg
			withDefects++
		}
		if got := info.Flags&native.FlagDefects != 0; got != (info.FrameID%4 == 0) {
			t.Fatalf("frame %d: defects flag %v", info.FrameID, got)
		}
		if len(frame.Defects(nil, cfg.Geometry, info.FrameID)) > 0 && !bytes.Equal(mem[info.Buffer][:cfg.Geometry.Size()], want(t, ref, info.FrameID)) {
			t.Fatalf("frame %d: not the pattern with defects=%v", info.FrameID, ref.Defects)
		}
		if err := f.Requeue(); err != nil {
			t.Fatal(err)
		}
	}
	if withDefects == 0 {
		t.Fatal("no frame with defects")
	}
}
