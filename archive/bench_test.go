package archive_test

// Throughput of Append against a plain sequential write of the same bytes to
// the same kind of directory: report the ratio of the two MB/s figures.
//
//	go test -run '^$' -bench . -benchtime 2s ./archive/

import (
	"fmt"
	"math"
	"math/bits"
	"os"
	"path/filepath"
	"testing"
	"time"

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
	// The archiver's default policy: fsync from the background goroutine.
	{"interval100ms", archive.SyncPolicy{Interval: 100 * time.Millisecond}},
}

// latencies is a histogram of Append latencies with 8 buckets per power of
// two (bucket upper bounds within 9% of each other), fixed-size so that
// recording allocates nothing.
type latencies struct {
	n   uint64
	max time.Duration
	b   [64 * 8]uint64
}

func (l *latencies) add(d time.Duration) {
	l.n++
	l.max = max(l.max, d)
	l.b[latBucket(d)]++
}

func latBucket(d time.Duration) int {
	v := uint64(max(d, 1))
	e := bits.Len64(v) - 1 // 2^e <= v < 2^(e+1)
	if e < 3 {
		return int(v) // exact below 8 ns
	}
	return e*8 + int(v>>(e-3))&7
}

// quantile returns an upper bound of the q-quantile (within one bucket).
func (l *latencies) quantile(q float64) time.Duration {
	want := uint64(math.Ceil(q * float64(l.n)))
	var seen uint64
	for i, c := range l.b {
		seen += c
		if seen >= max(want, 1) {
			if i < 8 {
				return time.Duration(i)
			}
			e := i / 8
			return time.Duration(uint64(8+i%8+1) << (e - 3))
		}
	}
	return l.max
}

// report adds the latency metrics of the appends to b.
func (l *latencies) report(b *testing.B) {
	if l.n == 0 {
		return
	}
	b.ReportMetric(float64(l.quantile(0.5))/1e6, "p50-ms")
	b.ReportMetric(float64(l.quantile(0.9))/1e6, "p90-ms")
	b.ReportMetric(float64(l.quantile(0.99))/1e6, "p99-ms")
	b.ReportMetric(float64(l.quantile(0.999))/1e6, "p99.9-ms")
	b.ReportMetric(float64(l.max)/1e6, "max-ms")
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
					var lat latencies
					i := 0
					for b.Loop() {
						m.FrameID = uint64(i)
						t0 := time.Now()
						if _, err := w.Append(m, frames[i%len(frames)]); err != nil {
							b.Fatal(err)
						}
						lat.add(time.Since(t0))
						i++
					}
					st := w.Stats()
					b.ReportMetric(float64(st.Bytes)/float64(max(st.RawBytes, 1)), "stored/raw")
					lat.report(b)
				})
			}
		}
	}
}

// BenchmarkPlainWrite is the baseline: os.File.Write of the same frame bytes,
// sequentially, to one file per 256 MiB in a fresh directory, with the same
// fsync cadence (the interval one inline, as a writer without a background
// goroutine would).
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
				last := time.Now()
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
					if (s.p.Records > 0 && unsynced >= s.p.Records) || (s.p.Interval > 0 && time.Since(last) >= s.p.Interval) {
						f.Sync()
						unsynced = 0
						last = time.Now()
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

// BenchmarkAppendPaced appends frames at a fixed rate below the disk's
// bandwidth, as the archiver does at a camera's frame rate, and reports the
// latency of Append: what a lossless ring consumer waits while its ring
// fills. ns/op is the pacing period; the latency metrics are the result.
//
//	go test -run '^$' -bench AppendPaced -benchtime 3000x ./archive/
func BenchmarkAppendPaced(b *testing.B) {
	for _, c := range []struct {
		name string
		g    frame.Geometry
		fps  int
	}{
		{"1MiB-100fps", benchSizes[0].g, 100},
		{"64KiB-1000fps", frame.Packed(256, 256, frame.Mono8), 1000},
	} {
		for _, s := range benchSyncs {
			if s.name == "sync1" {
				continue
			}
			b.Run(c.name+"/"+s.name, func(b *testing.B) {
				frames := benchFrames(b, c.g)
				w, err := archive.Open(b.TempDir(), archive.Options{MaxSegmentSize: 256 << 20, Sync: s.p})
				if err != nil {
					b.Fatal(err)
				}
				defer w.Close()
				m := archive.Meta{Width: c.g.Width, Height: c.g.Height, Stride: c.g.Stride, Format: c.g.Format}
				b.SetBytes(int64(c.g.Size()))
				b.ReportAllocs()
				var lat latencies
				start := time.Now()
				i := 0
				for b.Loop() {
					time.Sleep(time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(c.fps))))
					m.FrameID = uint64(i)
					t0 := time.Now()
					if _, err := w.Append(m, frames[i%len(frames)]); err != nil {
						b.Fatal(err)
					}
					lat.add(time.Since(t0))
					i++
				}
				lat.report(b)
				b.ReportMetric(float64(w.Stats().Fsyncs), "fsyncs")
			})
		}
	}
}

// BenchmarkAppendWhileSyncing appends 1 MiB frames while another goroutine
// calls Sync back to back: the worst case of a background fsync. Append
// latency shows whether an append waits for the fsync in flight.
func BenchmarkAppendWhileSyncing(b *testing.B) {
	sz := benchSizes[0]
	frames := benchFrames(b, sz.g)
	w, err := archive.Open(b.TempDir(), archive.Options{MaxSegmentSize: 256 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	stop := make(chan struct{})
	synced := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				synced <- nil
				return
			default:
			}
			if err := w.Sync(); err != nil {
				synced <- err
				return
			}
		}
	}()
	m := archive.Meta{Width: sz.g.Width, Height: sz.g.Height, Stride: sz.g.Stride, Format: sz.g.Format}
	b.SetBytes(int64(sz.g.Size()))
	b.ReportAllocs()
	var lat latencies
	i := 0
	for b.Loop() {
		m.FrameID = uint64(i)
		t0 := time.Now()
		if _, err := w.Append(m, frames[i%len(frames)]); err != nil {
			b.Fatal(err)
		}
		lat.add(time.Since(t0))
		i++
	}
	close(stop)
	if err := <-synced; err != nil {
		b.Fatal(err)
	}
	lat.report(b)
	b.ReportMetric(float64(w.Stats().Fsyncs)/float64(max(i, 1)), "fsyncs/op")
}
