package pipeline

// Stop order (the invariant this file keeps): the producer is stopped
// first, with both consumers started with -reattach=false. Closing the ring
// wakes them; the lossless archiver drains every frame still published,
// then ends on "ring closed", so it has seen every sequence number the
// producer published and archived == published is a check, not a hope.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/framering/framering/frame"
	"github.com/framering/framering/loss"
	"github.com/framering/framering/ringbuf"
	"github.com/framering/framering/ringstat"
)

// Config says what to run.
type Config struct {
	BinDir   string        // where producer, analyzer and archiver are
	OutDir   string        // analysis.jsonl, archive/, logs
	Ring     string        // ring name
	Duration time.Duration // how long the producer runs
	Geometry frame.Geometry
	FPS      float64
	Slots    int
	Source   string // sdk, synthetic, aravis, or "" for the producer's default
	// Camera and Settings ("Feature=Value") go to the producer as -camera
	// and -set with Source "aravis"; Geometry and FPS are then the
	// camera's business, and its frames carry no injected defects.
	Camera   string
	Settings []string
	Copy     bool // safe-copy mode in every process
	Progress io.Writer
	Logger   *slog.Logger
}

// ErrCheck is returned when the processes ran but their reports disagree
// (a frame neither archived nor accounted for, an archive that does not
// verify, a defect the analyzer missed or invented).
var ErrCheck = errors.New("pipeline check failed")

// Summary is what the run produced, as the processes reported it.
type Summary struct {
	Elapsed time.Duration
	// Producer.
	Frames, Published uint64
	Drops             loss.Counts // the ring's drop table at the end, by cause
	ProducerMode      string
	// Analyzer (lossy).
	Analyzed, AnalyzerSkipped, AnalyzerMissed, Defects, DefectFrames uint64
	DefectsChecked, DefectsWrong                                     uint64
	LatencyP50, LatencyP99, LatencyMax                               time.Duration
	// Archiver (lossless).
	Archived, ArchivedBytes, ArchiveLost, Fsyncs uint64
	VerifyOK                                     bool
	VerifyReport                                 string
	Problems                                     []string
}

type proc struct {
	name string
	cmd  *exec.Cmd
	out  *bytes.Buffer
	done chan error
}

func (c *Config) start(ctx context.Context, name string, args ...string) (*proc, error) {
	cmd := exec.Command(filepath.Join(c.BinDir, name), args...)
	logf, err := os.Create(filepath.Join(c.OutDir, name+".log"))
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, out: &out, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait(); logf.Close() }()
	return p, nil
}

// stop sends SIGTERM and waits, escalating to SIGKILL after grace.
func (p *proc) stop(grace time.Duration) error {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		return err
	case <-time.After(grace):
		p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not stop within %v: killed", p.name, grace)
	}
}

// wait waits for a process that should end on its own.
func (p *proc) wait(grace time.Duration) error {
	select {
	case err := <-p.done:
		return err
	case <-time.After(grace):
		return p.stop(5 * time.Second)
	}
}

// Run starts the three processes, lets frames flow for Duration (or until
// ctx ends), stops them, and checks their reports.
func Run(ctx context.Context, c Config) (Summary, error) {
	var s Summary
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	if err := os.MkdirAll(c.OutDir, 0o755); err != nil {
		return s, fmt.Errorf("run pipeline: %w", err)
	}
	archive := filepath.Join(c.OutDir, "archive")
	analysis := filepath.Join(c.OutDir, "analysis.jsonl")
	os.RemoveAll(archive)
	g := c.Geometry
	common := []string{"-ring", c.Ring, "-log-format", "json"}
	pargs := append([]string{}, common...)
	pargs = append(pargs, "-json", "-stats-interval", "2s")
	if c.camera() {
		if c.Camera != "" {
			pargs = append(pargs, "-camera", c.Camera)
		}
		for _, set := range c.Settings {
			pargs = append(pargs, "-set", set)
		}
	} else {
		pargs = append(pargs, "-defects",
			"-width", strconv.Itoa(g.Width), "-height", strconv.Itoa(g.Height), "-stride", strconv.Itoa(g.Stride),
			"-format", g.Format.String(), "-fps", strconv.FormatFloat(c.FPS, 'f', -1, 64))
	}
	if c.Slots > 0 {
		pargs = append(pargs, "-slots", strconv.Itoa(c.Slots))
	}
	if c.Source != "" {
		pargs = append(pargs, "-source", c.Source)
	}
	if c.Copy {
		pargs = append(pargs, "-copy")
	}
	start := time.Now()
	prod, err := c.start(ctx, "producer", pargs...)
	if err != nil {
		return s, fmt.Errorf("run pipeline: %w", err)
	}
	// Consumers attach once the ring exists (and wait for it if needed),
	// and end when the producer closes it.
	cargs := append(append([]string{}, common...), "-reattach=false", "-wait")
	if c.Copy {
		cargs = append(cargs, "-copy")
	}
	an, err := c.start(ctx, "analyzer", append(cargs, "-out", analysis)...)
	if err != nil {
		prod.stop(5 * time.Second)
		return s, fmt.Errorf("run pipeline: %w", err)
	}
	ar, err := c.start(ctx, "archiver", append([]string{"run", "-dir", archive}, cargs...)...)
	if err != nil {
		prod.stop(5 * time.Second)
		an.stop(5 * time.Second)
		return s, fmt.Errorf("run pipeline: %w", err)
	}
	c.progress(ctx, prod, time.Now().Add(c.Duration))

	perr := prod.stop(10 * time.Second)
	aerr := an.wait(20 * time.Second)
	rerr := ar.wait(60 * time.Second)
	s.Elapsed = time.Since(start)
	for _, e := range []struct {
		name string
		err  error
	}{{"producer", perr}, {"analyzer", aerr}, {"archiver", rerr}} {
		if e.err != nil {
			s.Problems = append(s.Problems, fmt.Sprintf("%s: %v (see %s.log)", e.name, e.err, e.name))
		}
	}
	c.collectProducer(&s, prod.out.Bytes())
	c.collectAnalyzer(&s, analysis)
	arLog, _ := os.ReadFile(filepath.Join(c.OutDir, "archiver.log"))
	c.collectArchiver(&s, append(ar.out.Bytes(), arLog...))
	c.verify(&s, archive)
	c.check(&s)
	if len(s.Problems) > 0 {
		return s, fmt.Errorf("run pipeline: %w: %d problems", ErrCheck, len(s.Problems))
	}
	return s, nil
}

// camera reports whether the source is a camera (no injected defects, its
// own geometry).
func (c *Config) camera() bool { return c.Source == "aravis" }

// progress prints a line a second from the ring's own counters (an
// observer attach: no holds) until the deadline or ctx ends.
func (c *Config) progress(ctx context.Context, prod *proc, deadline time.Time) {
	var obs *ringbuf.Reader
	defer func() {
		if obs != nil {
			obs.Close()
		}
	}()
	var rates ringstat.Rates // the line's rate: since the previous line
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	end := time.NewTimer(time.Until(deadline)) // a Duration shorter than a tick ends on time
	defer end.Stop()
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return
		case <-end.C:
			return
		case <-prod.done:
			prod.done <- nil // let stop see it
			return
		case <-tick.C:
		}
		if obs == nil {
			actx, cancel := context.WithTimeout(ctx, time.Second)
			obs, _ = ringbuf.Attach(actx, ringbuf.Options{Name: c.Ring, Role: ringbuf.RoleObserver})
			cancel()
			if obs == nil {
				continue
			}
		}
		snap, err := obs.Snapshot()
		if err != nil {
			continue
		}
		rep := rates.Report(c.Ring, "", snap, time.Now())
		line := fmt.Sprintf("%5.1fs  %s", time.Until(deadline).Seconds()*-1+c.Duration.Seconds(), rep.Line())
		fmt.Fprintln(c.Progress, line)
	}
}

func lastJSON(b []byte, key string) map[string]any {
	var found map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) != nil {
			continue
		}
		if _, ok := m[key]; ok || key == "" {
			found = m
		}
		if v, ok := m["msg"]; ok && v == key {
			found = m
		}
	}
	return found
}

func u(m map[string]any, k string) uint64 {
	f, _ := m[k].(float64)
	return uint64(f)
}

func (c *Config) collectProducer(s *Summary, out []byte) {
	m := lastJSON(out, "published")
	if m == nil {
		s.Problems = append(s.Problems, "producer printed no summary")
		return
	}
	s.Frames, s.Published = u(m, "frames"), u(m, "published")
	if b, err := json.Marshal(m["drops"]); err == nil {
		if err := json.Unmarshal(b, &s.Drops); err != nil {
			s.Problems = append(s.Problems, "producer summary: drops: "+err.Error())
		}
	}
	s.ProducerMode, _ = m["mode"].(string)
}

func (c *Config) collectAnalyzer(s *Summary, path string) {
	f, err := os.Open(path)
	if err != nil {
		s.Problems = append(s.Problems, "analyzer wrote no results: "+err.Error())
		return
	}
	defer f.Close()
	type defect struct {
		X, Y, W, H int
		Bright     bool
	}
	type line struct {
		Seq     *uint64  `json:"seq"`
		FrameID uint64   `json:"frame_id"`
		Defects []defect `json:"defects"`
		Summary *struct {
			Frames       uint64 `json:"frames"`
			Skipped      uint64 `json:"skipped"`
			Missed       uint64 `json:"missed"`
			Defects      uint64 `json:"defects"`
			DefectFrames uint64 `json:"defect_frames"`
			P50          int64  `json:"latency_p50_ns"`
			P99          int64  `json:"latency_p99_ns"`
			Max          int64  `json:"latency_max_ns"`
		} `json:"summary"`
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 16<<20)
	var want []frame.Blob
	for sc.Scan() {
		var l line
		if json.Unmarshal(sc.Bytes(), &l) != nil {
			continue
		}
		if l.Summary != nil {
			s.Analyzed, s.AnalyzerSkipped, s.AnalyzerMissed = l.Summary.Frames, l.Summary.Skipped, l.Summary.Missed
			s.Defects, s.DefectFrames = l.Summary.Defects, l.Summary.DefectFrames
			s.LatencyP50, s.LatencyP99, s.LatencyMax = time.Duration(l.Summary.P50), time.Duration(l.Summary.P99), time.Duration(l.Summary.Max)
			continue
		}
		if l.Seq == nil || c.camera() {
			continue
		}
		// The source injects defects at places frame.Defects computes from
		// the frame id: the analyzer must report exactly those.
		s.DefectsChecked++
		want = frame.Defects(want[:0], c.Geometry, l.FrameID)
		ok := len(want) == len(l.Defects)
		for _, w := range want {
			hit := false
			for _, d := range l.Defects {
				hit = hit || (d.X == w.X && d.Y == w.Y && d.W == w.Size && d.H == w.Size && d.Bright == w.Bright)
			}
			ok = ok && hit
		}
		if !ok {
			s.DefectsWrong++
		}
	}
	if s.Analyzed == 0 {
		s.Problems = append(s.Problems, "analyzer analyzed no frame")
	}
	if s.DefectsWrong > 0 && !c.camera() {
		s.Problems = append(s.Problems, fmt.Sprintf("analyzer reported wrong defects in %d of %d frames", s.DefectsWrong, s.DefectsChecked))
	}
}

func (c *Config) collectArchiver(s *Summary, out []byte) {
	m := lastJSON(out, "summary")
	if m == nil {
		s.Problems = append(s.Problems, "archiver printed no summary")
		return
	}
	s.Archived, s.ArchivedBytes, s.ArchiveLost, s.Fsyncs = u(m, "stored"), u(m, "bytes"), u(m, "lost_total"), u(m, "fsyncs")
}

func (c *Config) verify(s *Summary, dir string) {
	cmd := exec.Command(filepath.Join(c.BinDir, "archiver"), "verify", "-dir", dir)
	out, err := cmd.CombinedOutput()
	s.VerifyReport = string(out)
	s.VerifyOK = err == nil
	if err != nil {
		s.Problems = append(s.Problems, "archive verify failed: "+err.Error())
	}
}

func (c *Config) check(s *Summary) {
	if s.Published == 0 {
		s.Problems = append(s.Problems, "nothing was published")
	}
	if s.Frames != s.Published+s.Drops.Total() {
		s.Problems = append(s.Problems, fmt.Sprintf("producer books do not balance: %d frames, %d published + %d dropped",
			s.Frames, s.Published, s.Drops.Total()))
	}
	// The archiver records upstream drops (never published) as losses too,
	// so its books are: stored + recorded losses = published + dropped. A
	// lossless archiver that saw the whole run stores every published frame.
	dropped := s.Drops.Total()
	if s.Archived != s.Published || s.Archived+s.ArchiveLost != s.Published+dropped {
		s.Problems = append(s.Problems, fmt.Sprintf("archiver stored %d and recorded %d lost; the producer published %d and dropped %d",
			s.Archived, s.ArchiveLost, s.Published, dropped))
	}
}

// Print writes the summary for a person.
func (s Summary) Print(w io.Writer, c Config) {
	mode := s.ProducerMode
	if c.camera() {
		fmt.Fprintf(w, "\nframering pipeline: %.1f s, aravis source (camera %s%s), %s\n",
			s.Elapsed.Seconds(), orDefault(c.Camera, "first found"), strings.Join(append([]string{""}, c.Settings...), " -set "), mode)
	} else {
		fmt.Fprintf(w, "\nframering pipeline: %.1f s, %s source, %dx%d %s at %g fps, %s\n",
			s.Elapsed.Seconds(), orDefault(c.Source, "default"), c.Geometry.Width, c.Geometry.Height, c.Geometry.Format, c.FPS, mode)
	}
	fmt.Fprintf(w, "  produced by the source   %d frames\n", s.Frames)
	fmt.Fprintf(w, "  published to the ring    %d\n", s.Published)
	fmt.Fprintf(w, "  dropped at the producer  %d%s\n", s.Drops.Total(), byCause(s.Drops))
	if c.camera() {
		fmt.Fprintf(w, "  analyzed (lossy)         %d, skipped %d, missed %d; %d blobs over the thresholds in %d frames\n",
			s.Analyzed, s.AnalyzerSkipped, s.AnalyzerMissed, s.Defects, s.DefectFrames)
	} else {
		fmt.Fprintf(w, "  analyzed (lossy)         %d, skipped %d, missed %d; %d defects in %d frames, %d of %d frames checked against the injected defects were wrong\n",
			s.Analyzed, s.AnalyzerSkipped, s.AnalyzerMissed, s.Defects, s.DefectFrames, s.DefectsWrong, s.DefectsChecked)
	}
	fmt.Fprintf(w, "  analyzer latency         p50 %v, p99 %v, max %v (capture to result)\n", s.LatencyP50, s.LatencyP99, s.LatencyMax)
	verify := "FAILED"
	if s.VerifyOK {
		verify = "OK"
	}
	fmt.Fprintf(w, "  archived (lossless)      %d frames, %.1f MiB, %d lost and recorded, %d fsyncs; archive verify: %s\n",
		s.Archived, float64(s.ArchivedBytes)/(1<<20), s.ArchiveLost, s.Fsyncs, verify)
	fmt.Fprintf(w, "  outputs                  %s\n", c.OutDir)
	if len(s.Problems) == 0 && c.camera() {
		fmt.Fprintln(w, "  result                   OK: every published frame archived, every drop recorded, archive verified")
		return
	}
	if len(s.Problems) == 0 {
		fmt.Fprintln(w, "  result                   OK: every published frame archived, every drop recorded, archive verified, defects where injected")
		return
	}
	for _, p := range s.Problems {
		fmt.Fprintln(w, "  PROBLEM                 ", p)
	}
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// byCause lists the nonzero drop causes as every view does: " (blocked 1, underrun 3)".
func byCause(c loss.Counts) string {
	if c.Total() == 0 {
		return ""
	}
	return " (" + ringstat.CausesText(c.Map()) + ")"
}
