package frame_test

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/framering/framering/frame"
)

func TestFillVerifyRoundTrip(t *testing.T) {
	for _, f := range []frame.Format{frame.Mono8, frame.Mono16, frame.RGB8} {
		g := frame.Packed(160, 90, f)
		g.Stride += 7 // padding must be zeroed and covered by the checksum
		gen, err := frame.NewGenerator(g, true)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, g.Size())
		for id := uint64(0); id < 12; id++ {
			for i := range buf {
				buf[i] = 0xA5 // Fill must not depend on old contents
			}
			if err := gen.Fill(buf, id); err != nil {
				t.Fatal(err)
			}
			s, err := frame.Verify(buf)
			if err != nil {
				t.Fatalf("%v id %d: %v", f, id, err)
			}
			if s.FrameID != id || s.Format != f || s.Width != 160 || s.Height != 90 {
				t.Fatalf("%v: stamp %+v", f, s)
			}
			if buf[g.RowBytes()] != 0 || buf[g.Stride-1] != 0 {
				t.Fatalf("%v: padding not zeroed", f)
			}
			buf[len(buf)/2] ^= 1
			if _, err := frame.Verify(buf); !errors.Is(err, frame.ErrStamp) {
				t.Fatalf("%v: flipped byte verified: %v", f, err)
			}
		}
	}
}

func TestBackgroundValues(t *testing.T) {
	g := frame.Packed(64, 32, frame.Mono16)
	gen, _ := frame.NewGenerator(g, false)
	buf := make([]byte, g.Size())
	const id = 5
	if err := gen.Fill(buf, id); err != nil {
		t.Fatal(err)
	}
	for y := 1; y < g.Height; y++ {
		for x := 0; x < g.Width; x++ {
			want := uint16((16 + (x+2*y+3*id)%128) * 257)
			if got := binary.LittleEndian.Uint16(buf[y*g.Stride+2*x:]); got != want {
				t.Fatalf("(%d,%d) = %d, want %d", x, y, got, want)
			}
		}
	}
}

func TestDefectsPlacement(t *testing.T) {
	g := frame.Packed(320, 240, frame.Mono8)
	gen, _ := frame.NewGenerator(g, true)
	buf := make([]byte, g.Size())
	seen := 0
	for id := uint64(0); id < 30; id++ {
		blobs := frame.Defects(nil, g, id)
		if len(blobs) != int(id%3) {
			t.Fatalf("id %d: %d defects", id, len(blobs))
		}
		if err := gen.Fill(buf, id); err != nil {
			t.Fatal(err)
		}
		for _, b := range blobs {
			seen++
			if b.Y < 1 || b.Y+b.Size > g.Height || b.X < 0 || b.X+b.Size > g.Width || b.Size < 4 || b.Size > 16 {
				t.Fatalf("id %d: blob out of range %+v", id, b)
			}
			want := byte(0)
			if b.Bright {
				want = 0xFF
			}
			if buf[(b.Y+b.Size/2)*g.Stride+b.X+b.Size/2] != want {
				t.Fatalf("id %d: blob %+v not drawn", id, b)
			}
		}
	}
	if seen == 0 {
		t.Fatal("no defects generated")
	}
	if n := len(frame.Defects(nil, frame.Packed(40, 10, frame.Mono8), 2)); n != 0 {
		t.Fatalf("tiny frame got %d defects", n)
	}
}

func TestGeneratorRejects(t *testing.T) {
	cases := []frame.Geometry{
		{Width: 0, Height: 1, Stride: 1, Format: frame.Mono8},
		{Width: 10, Height: 10, Stride: 9, Format: frame.Mono8},
		{Width: 10, Height: 10, Stride: 10, Format: 42},
		{Width: 4, Height: 4, Stride: 4, Format: frame.Mono8}, // 16 bytes < stamp
	}
	for _, g := range cases {
		if _, err := frame.NewGenerator(g, false); !errors.Is(err, frame.ErrGeometry) && !errors.Is(err, frame.ErrFormat) {
			t.Errorf("%+v: err %v", g, err)
		}
	}
	gen, _ := frame.NewGenerator(frame.Packed(16, 16, frame.Mono8), false)
	if err := gen.Fill(make([]byte, 10), 0); !errors.Is(err, frame.ErrGeometry) {
		t.Fatalf("short buffer: %v", err)
	}
}

func TestFillAllocs(t *testing.T) {
	g := frame.Packed(256, 64, frame.RGB8)
	gen, _ := frame.NewGenerator(g, true)
	buf := make([]byte, g.Size())
	id := uint64(0)
	if n := testing.AllocsPerRun(100, func() { id++; _ = gen.Fill(buf, id) }); n != 0 {
		t.Fatalf("Fill allocates %v", n)
	}
}

func FuzzVerify(f *testing.F) {
	gen, _ := frame.NewGenerator(frame.Packed(32, 8, frame.Mono8), true)
	buf := make([]byte, 256)
	_ = gen.Fill(buf, 7)
	f.Add(buf)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := frame.Verify(b)
		if err == nil && frame.Sum64(s.FrameID, b[frame.StampSize:]) != s.Checksum {
			t.Fatal("verified a frame whose checksum does not match")
		}
	})
}

func BenchmarkFill8MiB(b *testing.B) {
	g := frame.Packed(4096, 2048, frame.Mono8)
	gen, _ := frame.NewGenerator(g, true)
	buf := make([]byte, g.Size())
	b.SetBytes(int64(g.Size()))
	for i := 0; b.Loop(); i++ {
		_ = gen.Fill(buf, uint64(i))
	}
}
