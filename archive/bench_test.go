package archive_test

// Throughput of Append against a plain sequential write of the same bytes to
// the same kind of directory: report the ratio of the two MB/s figures.
//
//	go test -run '^$' -bench . -benchtime 2s ./archive/

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/framering/framering/archive"
	"github.com/framering/framering/frame"
)

var benchSizes = []struct {
	name string
	g    frame.Geometry
}{
	{"1MiB", frame.Packed(1024, 1024, frame.Mono8)},
	{"8MiB", frame.Packed(4096, 2048, frame.Mono8)},
}

var benchSyncs = []struct {
	name string
	p    archive.SyncPolicy
}{
	{"nosync", archive.SyncPolicy{}},
	{"sync16", archive.SyncPolicy{Records: 16}},
	{"sync1", archive.SyncPolicy{Records: 1}},
}

// benchFrames returns a few distinct pattern frames to cycle through, with
// sensor-like noise in the two low bits of every byte: the bare pattern
// compresses about 1000:1, which would flatter the codecs.
func benchFrames(b *testing.B, g frame.Geometry) [][]byte {
	gen, err := frame.NewGenerator(g, true)
	if err != nil {
		b.Fatal(err)
	}
	out := make([][]byte, 4)
	x := uint64(0x9E3779B97F4A7C15)
	for i := range out {
		out[i] = make([]byte, g.Size())
		gen.Fill(out[i], uint64(i))
		for j := range out[i] {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			out[i][j] ^= byte(x) & 3
		}
	}
	return out
}

func BenchmarkAppend(b *testing.B) {
	for _, sz := range benchSizes {
		for _, c := range []archive.Codec{archive.CodecNone, archive.CodecS2, archive.CodecZstd} {
			for _, s := range benchSyncs {
				if c != archive.CodecNone && s.name == "sync1" {
					continue
				}
				b.Run(fmt.Sprintf("%s/%v/%s", sz.name, c, s.name), func(b *testing.B) {
					frames := benchFrames(b, sz.g)
					w, err := archive.Open(b.TempDir(), archive.Options{MaxSegmentSize: 256 << 20, Codec: c, Sync: s.p})
					if err != nil {
						b.Fatal(err)
					}
					defer w.Close()
					m := archive.Meta{Width: sz.g.Width, Height: sz.g.Height, Stride: sz.g.Stride, Format: sz.g.Format}
					b.SetBytes(int64(sz.g.Size()))
					b.ReportAllocs()
					i := 0
					for b.Loop() {
						m.FrameID = uint64(i)
						if _, err := w.Append(m, frames[i%len(frames)]); err != nil {
							b.Fatal(err)
						}
						i++
					}
					st := w.Stats()
					b.ReportMetric(float64(st.Bytes)/float64(max(st.RawBytes, 1)), "stored/raw")
				})
			}
		}
	}
}

// BenchmarkPlainWrite is the baseline: os.File.Write of the same frame bytes,
// sequentially, to one file per 256 MiB in a fresh directory, with the same
// fsync cadence.
func BenchmarkPlainWrite(b *testing.B) {
	for _, sz := range benchSizes {
		for _, s := range benchSyncs {
			b.Run(fmt.Sprintf("%s/%s", sz.name, s.name), func(b *testing.B) {
				frames := benchFrames(b, sz.g)
				dir := b.TempDir()
				var f *os.File
				var written int64
				n := 0
				open := func() {
					if f != nil {
						f.Sync()
						f.Close()
					}
					var err error
					f, err = os.Create(filepath.Join(dir, fmt.Sprintf("%08d.raw", n)))
					if err != nil {
						b.Fatal(err)
					}
					n++
					written = 0
				}
				open()
				defer func() { f.Close() }()
				b.SetBytes(int64(sz.g.Size()))
				i, unsynced := 0, 0
				for b.Loop() {
					if written+int64(sz.g.Size()) > 256<<20 {
						open()
					}
					if _, err := f.Write(frames[i%len(frames)]); err != nil {
						b.Fatal(err)
					}
					written += int64(sz.g.Size())
					i++
					unsynced++
					if s.p.Records > 0 && unsynced >= s.p.Records {
						f.Sync()
						unsynced = 0
					}
				}
			})
		}
	}
}

func BenchmarkRead(b *testing.B) {
	sz := benchSizes[0]
	for _, c := range []archive.Codec{archive.CodecNone, archive.CodecS2, archive.CodecZstd} {
		b.Run(c.String(), func(b *testing.B) {
			dir := b.TempDir()
			frames := benchFrames(b, sz.g)
			w, _ := archive.Open(dir, archive.Options{Codec: c})
			m := archive.Meta{Width: sz.g.Width, Height: sz.g.Height, Stride: sz.g.Stride, Format: sz.g.Format}
			for i := range 32 {
				m.FrameID = uint64(i)
				w.Append(m, frames[i%len(frames)])
			}
			w.Close()
			r, err := archive.OpenReader(dir)
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			b.SetBytes(int64(sz.g.Size()))
			i := uint64(0)
			for b.Loop() {
				if _, err := r.ReadSeq(i%32, nil); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
