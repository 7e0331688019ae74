package archiver

// archiver bench: the archive's write path against a plain sequential write
// of the same bytes, to the same directory, in the same run, alternating
// which goes first in each round. Both follow the same fsync policy (the
// plain writer checks its triggers inline) and end with an fsync; each pass
// starts after a sync(2) and its files are removed when it ends, so that
// one pass's write-back does not slow the next. The median of the rounds is
// reported: on a virtual disk single passes vary by 2-3x.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/framering/framering/archive"
	"github.com/framering/framering/frame"
	"github.com/framering/framering/internal/cli"
)

// BenchConfig describes a bench run.
type BenchConfig struct {
	Dir         string
	Frames      int
	Geometry    frame.Geometry
	Sync        archive.SyncPolicy
	Compress    bool
	SegmentSize int64
	Rounds      int
	Keep        bool
}

// BenchPass is one timed pass.
type BenchPass struct {
	Seconds float64 `json:"seconds"`
	MBps    float64 `json:"mb_per_s"` // frame bytes per second, 10^6
	Fsyncs  uint64  `json:"fsyncs"`
	Written uint64  `json:"bytes_written"` // bytes that reached the files
}

// BenchResult is what Bench measured.
type BenchResult struct {
	Frames     int         `json:"frames"`
	FrameBytes int         `json:"frame_bytes"`
	Geometry   string      `json:"geometry"`
	Sync       string      `json:"fsync"`
	Codec      string      `json:"codec"`
	Archive    []BenchPass `json:"archive"`
	Plain      []BenchPass `json:"plain"`
	// Medians over the rounds, and archive/plain.
	ArchiveMBps float64 `json:"archive_mb_per_s"`
	PlainMBps   float64 `json:"plain_mb_per_s"`
	Ratio       float64 `json:"ratio"`
}

// benchPool bounds the distinct frames held in memory.
const benchPool = 16

// Bench measures the archive's write throughput against a plain write.
func Bench(ctx context.Context, cfg BenchConfig) (*BenchResult, error) {
	if cfg.Frames < 1 || cfg.Rounds < 1 {
		return nil, fmt.Errorf("bench: %w: %d frames, %d rounds", ErrUsage, cfg.Frames, cfg.Rounds)
	}
	gen, err := frame.NewGenerator(cfg.Geometry, true)
	if err != nil {
		return nil, fmt.Errorf("bench: %w: %w", ErrUsage, err)
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	size := cfg.Geometry.Size()
	pool := make([][]byte, min(cfg.Frames, benchPool))
	for i := range pool {
		pool[i] = make([]byte, size)
		if err := gen.Fill(pool[i], uint64(i)); err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
	}
	codec := archive.CodecNone
	if cfg.Compress {
		codec = archive.CodecS2
	}
	res := &BenchResult{Frames: cfg.Frames, FrameBytes: size, Sync: FormatSyncPolicy(cfg.Sync), Codec: codec.String(),
		Geometry: fmt.Sprintf("%dx%d %v", cfg.Geometry.Width, cfg.Geometry.Height, cfg.Geometry.Format)}
	total := float64(cfg.Frames) * float64(size)
	for round := 0; round < cfg.Rounds; round++ {
		adir := filepath.Join(cfg.Dir, fmt.Sprintf("bench-%d-%d.archive", os.Getpid(), round))
		pfile := filepath.Join(cfg.Dir, fmt.Sprintf("bench-%d-%d.raw", os.Getpid(), round))
		var a, p BenchPass
		var err error
		passes := []func() error{
			func() error { a, err = benchArchive(ctx, adir, cfg, codec, pool); return err },
			func() error { p, err = benchPlain(ctx, pfile, cfg, pool); return err },
		}
		if round%2 == 1 {
			slices.Reverse(passes)
		}
		for _, pass := range passes {
			// Start each pass with no dirty data of the previous one
			// still being written back.
			syscall.Sync()
			err := pass()
			if !cfg.Keep || err != nil {
				os.RemoveAll(adir)
				os.Remove(pfile)
			}
			if err != nil {
				return nil, err
			}
		}
		a.MBps, p.MBps = round1(total/a.Seconds/1e6), round1(total/p.Seconds/1e6)
		res.Archive, res.Plain = append(res.Archive, a), append(res.Plain, p)
	}
	med := func(ps []BenchPass) float64 {
		v := make([]float64, len(ps))
		for i, p := range ps {
			v[i] = p.MBps
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	res.ArchiveMBps, res.PlainMBps = med(res.Archive), med(res.Plain)
	if res.PlainMBps > 0 {
		res.Ratio = float64(int(res.ArchiveMBps/res.PlainMBps*1000+0.5)) / 1000
	}
	return res, nil
}

func benchArchive(ctx context.Context, dir string, cfg BenchConfig, codec archive.Codec, pool [][]byte) (BenchPass, error) {
	g := cfg.Geometry
	start := time.Now()
	w, err := archive.Open(dir, archive.Options{MaxSegmentSize: cfg.SegmentSize, Sync: cfg.Sync, Codec: codec})
	if err != nil {
		return BenchPass{}, fmt.Errorf("bench archive: %w", err)
	}
	for i := 0; i < cfg.Frames; i++ {
		if i%64 == 0 && ctx.Err() != nil {
			w.Close()
			return BenchPass{}, fmt.Errorf("bench archive: %w", ctx.Err())
		}
		m := archive.Meta{FrameID: uint64(i), Timestamp: int64(i), Width: g.Width, Height: g.Height, Stride: g.Stride, Format: g.Format}
		if _, err := w.Append(m, pool[i%len(pool)]); err != nil {
			w.Close()
			return BenchPass{}, fmt.Errorf("bench archive: %w", err)
		}
	}
	if err := w.Close(); err != nil {
		return BenchPass{}, fmt.Errorf("bench archive: %w", err)
	}
	st := w.Stats()
	return BenchPass{Seconds: time.Since(start).Seconds(), Fsyncs: st.Fsyncs, Written: st.Bytes}, nil
}

func benchPlain(ctx context.Context, path string, cfg BenchConfig, pool [][]byte) (BenchPass, error) {
	start := time.Now()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return BenchPass{}, fmt.Errorf("bench plain write: %w", err)
	}
	defer f.Close()
	var pass BenchPass
	recs, bytes := 0, int64(0)
	last := time.Now()
	sync := func() error {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("bench plain write: %w", err)
		}
		pass.Fsyncs++
		recs, bytes, last = 0, 0, time.Now()
		return nil
	}
	p := cfg.Sync
	for i := 0; i < cfg.Frames; i++ {
		if i%64 == 0 && ctx.Err() != nil {
			return BenchPass{}, fmt.Errorf("bench plain write: %w", ctx.Err())
		}
		b := pool[i%len(pool)]
		if _, err := f.Write(b); err != nil {
			return BenchPass{}, fmt.Errorf("bench plain write: %w", err)
		}
		pass.Written += uint64(len(b))
		recs++
		bytes += int64(len(b))
		if (p.Records > 0 && recs >= p.Records) || (p.Bytes > 0 && bytes >= p.Bytes) || (p.Interval > 0 && time.Since(last) >= p.Interval) {
			if err := sync(); err != nil {
				return BenchPass{}, err
			}
		}
	}
	if err := sync(); err != nil {
		return BenchPass{}, err
	}
	if err := f.Close(); err != nil {
		return BenchPass{}, fmt.Errorf("bench plain write: %w", err)
	}
	pass.Seconds = time.Since(start).Seconds()
	return pass, nil
}

// WriteText prints the result for people.
func (r *BenchResult) WriteText(w io.Writer) {
	fmt.Fprintf(w, "bench: %d frames of %s (%s each), %s per pass, fsync %s, codec %s\n",
		r.Frames, r.Geometry, humanBytes(uint64(r.FrameBytes)), humanBytes(uint64(r.Frames)*uint64(r.FrameBytes)), r.Sync, r.Codec)
	for i := range r.Archive {
		a, p := r.Archive[i], r.Plain[i]
		fmt.Fprintf(w, "round %d: archive %8.1f MB/s (%.3f s, %d fsyncs, %s written)   plain %8.1f MB/s (%.3f s, %d fsyncs)\n",
			i+1, a.MBps, a.Seconds, a.Fsyncs, humanBytes(a.Written), p.MBps, p.Seconds, p.Fsyncs)
	}
	fmt.Fprintf(w, "median:  archive %.1f MB/s, plain write %.1f MB/s, ratio archive/plain %.3f\n", r.ArchiveMBps, r.PlainMBps, r.Ratio)
}

func benchCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench", "-dir DIR [flags]")
	cfg := BenchConfig{}
	cfg.Sync, _ = ParseSyncPolicy(DefaultSync)
	fs.StringVar(&cfg.Dir, "dir", "", "`directory` to write in (required); the bench's files are removed afterwards")
	fs.IntVar(&cfg.Frames, "frames", 256, "`frames` per pass")
	width := fs.Int("width", 1920, "frame width in `pixels`")
	height := fs.Int("height", 1080, "frame height in `pixels`")
	format := fs.String("format", "Mono8", "pixel `format`: "+frame.FormatNames())
	fs.Var(syncFlag{&cfg.Sync}, "fsync", "fsync `policy`, as for run")
	fs.BoolVar(&cfg.Compress, "compress", false, "S2 compression in the archive pass")
	fs.Var(sizeFlag{&cfg.SegmentSize}, "segment-size", "segment rotation `size`")
	fs.IntVar(&cfg.Rounds, "rounds", 5, "`rounds` (archive and plain each); the median is reported")
	fs.BoolVar(&cfg.Keep, "keep", false, "keep the files written")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := fs.Parse(args, stdout); err != nil {
		return err
	}
	if cfg.Dir == "" {
		return cli.Usagef("-dir is required")
	}
	f, err := frame.ParseFormat(*format)
	if err != nil {
		return cli.Usagef("-format: %w", err)
	}
	cfg.Geometry = frame.Packed(*width, *height, f)
	if err := cfg.Geometry.Validate(); err != nil {
		return cli.Usagef("%w", err)
	}
	if cfg.Frames < 1 || cfg.Rounds < 1 {
		return cli.Usagef("-frames and -rounds: want 1 or more")
	}
	res, err := Bench(ctx, cfg)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	res.WriteText(stdout)
	return nil
}
