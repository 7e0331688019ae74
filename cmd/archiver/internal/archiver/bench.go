package archiver

// archiver bench: the archive's write path against a plain sequential write
// of the same bytes, to the same directory, in the same run, alternating
// which goes first in each round. Both follow the same fsync policy (the
// plain writer checks its triggers inline) and end with an fsync; each pass
// starts after a sync(2) and its files are removed when it ends, so that
// one pass's write-back does not slow the next. The median of the rounds is
// reported: on a virtual disk single passes vary by 2-3x.
//
// Optional passes in each round: -keep-size adds an archive pass with that
// size cap, so retention deletes in the background while it writes;
// -read reads the archive pass's files back, as a plain sequential read
// and as a replay reads them (archive.Reader, each payload copied once into
// a frame buffer, the copy a replay makes into its slot), from the page
// cache since they were just written; -pre-frames N compares the two
// places a pre-trigger window of N frames can live (archiver run -record
// events): a ring of N buffers in memory, or a rolling file of N frames
// rewritten in place, by time, CPU and the bytes each pass dirtied for the
// disk (/proc/self/io write_bytes).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
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
	// KeepSize, if set, adds an archive pass with retention at this cap.
	KeepSize int64
	// Read adds the read passes (plain and archive.Reader) on the
	// archive pass's files.
	Read bool
	// PreFrames, if set, adds the pre-trigger passes with a window of
	// this many frames.
	PreFrames int
}

// BenchPass is one timed pass.
type BenchPass struct {
	Seconds float64 `json:"seconds"`
	MBps    float64 `json:"mb_per_s"` // frame bytes per second, 10^6
	Fsyncs  uint64  `json:"fsyncs"`
	Written uint64  `json:"bytes_written"` // bytes that reached the files
	// Deleted counts the segments retention deleted (retention passes).
	Deleted uint64 `json:"deleted_segments,omitempty"`
	// CPUSeconds is the process's user and system time during the pass,
	// and Dirtied the bytes it dirtied for the disk (pre-trigger passes).
	CPUSeconds float64 `json:"cpu_seconds,omitempty"`
	Dirtied    uint64  `json:"bytes_dirtied,omitempty"`
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

	// -keep-size: archive passes with retention deleting, and their median.
	KeepSize      int64       `json:"keep_size,omitempty"`
	Retention     []BenchPass `json:"retention,omitempty"`
	RetentionMBps float64     `json:"retention_mb_per_s,omitempty"`
	// -read: the archive pass's files read back plainly and through
	// archive.Reader (one copy per frame), and their medians.
	PlainRead      []BenchPass `json:"plain_read,omitempty"`
	ReplayRead     []BenchPass `json:"replay_read,omitempty"`
	PlainReadMBps  float64     `json:"plain_read_mb_per_s,omitempty"`
	ReplayReadMBps float64     `json:"replay_read_mb_per_s,omitempty"`
	// -pre-frames: the pre-trigger window in memory and in a rolling file.
	PreFrames int         `json:"pre_frames,omitempty"`
	PreMemory []BenchPass `json:"pre_memory,omitempty"`
	PreFile   []BenchPass `json:"pre_file,omitempty"`
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
		kdir := adir + ".keep"
		var a, p, kept, pr, rr, pm, pf BenchPass
		var err error
		passes := []func() error{
			func() error {
				a, err = benchArchive(ctx, adir, cfg, codec, archive.Retention{}, pool)
				if err == nil && cfg.Read {
					pr, rr, err = benchRead(adir, size)
				}
				return err
			},
			func() error { p, err = benchPlain(ctx, pfile, cfg, pool); return err },
		}
		if cfg.KeepSize > 0 {
			passes = append(passes, func() error {
				kept, err = benchArchive(ctx, kdir, cfg, codec, archive.Retention{MaxBytes: cfg.KeepSize}, pool)
				return err
			})
		}
		if cfg.PreFrames > 0 {
			passes = append(passes, func() error { pm, err = benchPreMemory(ctx, cfg, pool); return err },
				func() error { pf, err = benchPreFile(ctx, pfile, cfg, pool); return err })
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
				os.RemoveAll(kdir)
				os.Remove(pfile)
			}
			if err != nil {
				return nil, err
			}
		}
		a.MBps, p.MBps = round1(total/a.Seconds/1e6), round1(total/p.Seconds/1e6)
		res.Archive, res.Plain = append(res.Archive, a), append(res.Plain, p)
		if cfg.KeepSize > 0 {
			kept.MBps = round1(total / kept.Seconds / 1e6)
			res.Retention = append(res.Retention, kept)
		}
		if cfg.Read {
			pr.MBps, rr.MBps = round1(float64(pr.Written)/pr.Seconds/1e6), round1(total/rr.Seconds/1e6)
			res.PlainRead, res.ReplayRead = append(res.PlainRead, pr), append(res.ReplayRead, rr)
		}
		if cfg.PreFrames > 0 {
			pm.MBps, pf.MBps = round1(total/pm.Seconds/1e6), round1(total/pf.Seconds/1e6)
			res.PreMemory, res.PreFile = append(res.PreMemory, pm), append(res.PreFile, pf)
		}
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
	if cfg.KeepSize > 0 {
		res.KeepSize, res.RetentionMBps = cfg.KeepSize, med(res.Retention)
	}
	if cfg.Read {
		res.PlainReadMBps, res.ReplayReadMBps = med(res.PlainRead), med(res.ReplayRead)
	}
	res.PreFrames = cfg.PreFrames
	if res.PlainMBps > 0 {
		res.Ratio = float64(int(res.ArchiveMBps/res.PlainMBps*1000+0.5)) / 1000
	}
	return res, nil
}

func benchArchive(ctx context.Context, dir string, cfg BenchConfig, codec archive.Codec, ret archive.Retention, pool [][]byte) (BenchPass, error) {
	g := cfg.Geometry
	start := time.Now()
	w, err := archive.Open(dir, archive.Options{MaxSegmentSize: cfg.SegmentSize, Sync: cfg.Sync, Codec: codec, Retention: ret})
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
	return BenchPass{Seconds: time.Since(start).Seconds(), Fsyncs: st.Fsyncs, Written: st.Bytes, Deleted: st.Deleted.Segments}, nil
}

// benchRead reads the archive in dir back: its files with read(2) in 1 MiB
// blocks (Written: the bytes read), then its frames through archive.Reader,
// each payload copied into a frame buffer as a replay copies it into a slot.
func benchRead(dir string, frameSize int) (plain, replay BenchPass, err error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return plain, replay, fmt.Errorf("bench read: %w", err)
	}
	buf := make([]byte, 1<<20)
	start := time.Now()
	for _, e := range ents {
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			return plain, replay, fmt.Errorf("bench read: %w", err)
		}
		for {
			n, err := f.Read(buf)
			plain.Written += uint64(n)
			if err != nil {
				break
			}
		}
		f.Close()
	}
	plain.Seconds = time.Since(start).Seconds()

	slot := make([]byte, frameSize)
	start = time.Now()
	r, err := archive.OpenReader(dir)
	if err != nil {
		return plain, replay, fmt.Errorf("bench replay read: %w", err)
	}
	defer r.Close()
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return plain, replay, fmt.Errorf("bench replay read: %w", err)
		}
		if rec.Kind == archive.KindFrame {
			replay.Written += uint64(copy(slot, rec.Payload))
		}
	}
	replay.Seconds = time.Since(start).Seconds()
	return plain, replay, nil
}

// benchPreMemory keeps a pre-trigger window in memory: every frame is
// copied into the next of PreFrames buffers, round robin.
func benchPreMemory(ctx context.Context, cfg BenchConfig, pool [][]byte) (BenchPass, error) {
	win := make([][]byte, cfg.PreFrames)
	for i := range win {
		win[i] = make([]byte, len(pool[0]))
		copy(win[i], pool[0]) // the pages faulted in before the clock starts, as a long-running recorder has them
	}
	cpu0, io0 := cpuSeconds(), dirtiedBytes()
	start := time.Now()
	for i := 0; i < cfg.Frames; i++ {
		if i%64 == 0 && ctx.Err() != nil {
			return BenchPass{}, fmt.Errorf("bench pre-trigger memory: %w", ctx.Err())
		}
		copy(win[i%len(win)], pool[i%len(pool)])
	}
	return BenchPass{Seconds: time.Since(start).Seconds(), Written: uint64(cfg.Frames) * uint64(len(pool[0])),
		CPUSeconds: cpuSeconds() - cpu0, Dirtied: dirtiedBytes() - io0}, nil
}

// benchPreFile keeps a pre-trigger window in a rolling file: every frame is
// written with pwrite(2) over the oldest of PreFrames frame-sized places in
// a file next to the plain pass's (never fsynced: a window is only kept
// when a trigger copies it out). The file is laid out before the clock
// starts.
func benchPreFile(ctx context.Context, path string, cfg BenchConfig, pool [][]byte) (BenchPass, error) {
	path += ".pre"
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return BenchPass{}, fmt.Errorf("bench pre-trigger file: %w", err)
	}
	defer os.Remove(path)
	defer f.Close()
	size := int64(len(pool[0]))
	for i := 0; i < cfg.PreFrames; i++ {
		if _, err := f.WriteAt(pool[0], int64(i)*size); err != nil {
			return BenchPass{}, fmt.Errorf("bench pre-trigger file: %w", err)
		}
	}
	if err := f.Sync(); err != nil {
		return BenchPass{}, fmt.Errorf("bench pre-trigger file: %w", err)
	}
	cpu0, io0 := cpuSeconds(), dirtiedBytes()
	start := time.Now()
	for i := 0; i < cfg.Frames; i++ {
		if i%64 == 0 && ctx.Err() != nil {
			return BenchPass{}, fmt.Errorf("bench pre-trigger file: %w", ctx.Err())
		}
		if _, err := f.WriteAt(pool[i%len(pool)], int64(i%cfg.PreFrames)*size); err != nil {
			return BenchPass{}, fmt.Errorf("bench pre-trigger file: %w", err)
		}
	}
	return BenchPass{Seconds: time.Since(start).Seconds(), Written: uint64(cfg.Frames) * uint64(size),
		CPUSeconds: cpuSeconds() - cpu0, Dirtied: dirtiedBytes() - io0}, nil
}

// cpuSeconds is the process's user and system time so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// dirtiedBytes is the process's write_bytes from /proc/self/io: the bytes
// it caused to be sent to the storage layer (counted when pages are
// dirtied), 0 if unknown.
func dirtiedBytes() uint64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "write_bytes: "); ok {
			n, _ := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
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
	if len(r.Retention) > 0 {
		var del uint64
		for _, p := range r.Retention {
			del += p.Deleted
		}
		fmt.Fprintf(w, "retention (-keep-size %s): archive %.1f MB/s median while deleting (%d segments deleted in %d rounds), without %.1f MB/s\n",
			humanBytes(uint64(r.KeepSize)), r.RetentionMBps, del, len(r.Retention), r.ArchiveMBps)
	}
	if len(r.ReplayRead) > 0 {
		fmt.Fprintf(w, "read back (page cache): plain sequential read %.1f MB/s, archive.Reader with one copy per frame %.1f MB/s (median)\n",
			r.PlainReadMBps, r.ReplayReadMBps)
	}
	for i := range r.PreMemory {
		m, f := r.PreMemory[i], r.PreFile[i]
		per := func(p BenchPass) float64 { return p.CPUSeconds / float64(r.Frames) * 1e6 }
		fmt.Fprintf(w, "pre-trigger window of %d frames, round %d: memory %.1f MB/s (%.0f us CPU/frame, %s dirtied)   rolling file %.1f MB/s (%.0f us CPU/frame, %s dirtied)\n",
			r.PreFrames, i+1, m.MBps, per(m), humanBytes(m.Dirtied), f.MBps, per(f), humanBytes(f.Dirtied))
	}
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
	fs.Var(sizeFlag{&cfg.KeepSize}, "keep-size", "add an archive pass capped at this `size`, retention deleting while it writes")
	fs.BoolVar(&cfg.Read, "read", false, "read each archive pass back: plain sequential read and archive.Reader (a replay's read, one copy per frame)")
	fs.IntVar(&cfg.PreFrames, "pre-frames", 0, "add the pre-trigger passes: a window of `n` frames in memory and in a rolling file")
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
	if cfg.Frames < 1 || cfg.Rounds < 1 || cfg.PreFrames < 0 {
		return cli.Usagef("-frames and -rounds: want 1 or more; -pre-frames: 0 or more")
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
