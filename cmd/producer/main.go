// Command producer runs framering's producer: it creates a ring, acquires
// frames from a frame grabber (the pure-Go synthetic source, the default in
// every build; the simulated C SDK, with cgo; a GStreamer pipeline; or a
// GenICam camera through Aravis) and lands them
// in ring slots, zero-copy by default, until it is signalled (SIGINT,
// SIGTERM), -duration has passed or the source's stream ends. Consumers
// attach by the ring's name at any time.
//
//	producer -ring cam0 -width 1920 -height 1080 -format Mono8 -fps 60
//	producer -ring cam0 -source gst -pipeline "v4l2src device=/dev/video0"
//	producer -list-cameras
//	producer -ring cam0 -source aravis -camera 192.168.1.20 -set Width=1280 -set PixelFormat=Mono8 -set AcquisitionFrameRate=50
//
// -source gst needs a build with -tags gst; the pipeline's caps decide the
// geometry, format and rate (the ring is sized from them). -source aravis
// and -list-cameras need a build with -tags aravis; the camera's features
// (-set) decide them.
//
// Logs (structured, text or JSON) go to stderr; the final summary line goes
// to stdout, as JSON with -json.
//
// Exit status (package internal/cli): 0 after a clean stop (signal,
// -duration, end of stream), 1 if the producer failed (the ring exists and
// is live, the grabber failed...), 2 for a usage error (a bad flag, an
// invalid ring name or an impossible configuration).
//
// All the logic lives in package producer; this is flags, wiring and
// signals.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/framering/framering/archive"
	"github.com/framering/framering/frame"
	"github.com/framering/framering/internal/cli"
	"github.com/framering/framering/internal/diag"
	"github.com/framering/framering/loss"
	"github.com/framering/framering/native"
	"github.com/framering/framering/producer"
	"github.com/framering/framering/ringbuf"
)

// Exit codes (the convention of package internal/cli).
const (
	exitOK    = cli.ExitOK
	exitFail  = cli.ExitFailure
	exitUsage = cli.ExitUsage
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// options is what the flags say beyond producer.Config.
type options struct {
	cfg         producer.Config
	duration    time.Duration
	logFormat   string
	logLevel    slog.Level
	json        bool
	debugAddr   string
	listCameras bool
	// replay: -source archive
	archiveDir  string
	replaySel   producer.ReplaySelection
	replayEvent uint64
	loop        bool
}

// run is the whole command; main only exits with its result.
func run(args []string, stdout, stderr io.Writer) int {
	opts, err := parseFlags(args, stdout)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			err = cli.Usagef("%w", err) // every parse failure is a usage error
		}
		return cli.Exit(stderr, "producer", err)
	}
	if opts.listCameras {
		return listCameras(stdout, stderr)
	}
	if opts.cfg.Logger, err = cli.NewLogger(stderr, opts.logFormat, opts.logLevel.String()); err != nil {
		return cli.Exit(stderr, "producer", err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if opts.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.duration)
		defer cancel()
	}
	if opts.debugAddr != "" {
		if _, err := diag.Serve(ctx, opts.debugAddr, opts.cfg.Logger); err != nil {
			opts.cfg.Logger.Error("producer failed", "err", err)
			return exitFail
		}
	}
	if opts.cfg.Source == native.KindArchive {
		return runReplay(ctx, opts, stdout)
	}
	return runOnce(ctx, opts, stdout)
}

// runOnce runs one producer (one ring, one epoch) and prints its summary.
func runOnce(ctx context.Context, opts options, stdout io.Writer) int {
	st, err := producer.Run(ctx, opts.cfg)
	if err != nil {
		opts.cfg.Logger.Error("producer failed", "err", err)
		if errors.Is(err, producer.ErrConfig) || errors.Is(err, ringbuf.ErrConfig) {
			return exitUsage
		}
		if st.Ring == "" {
			return exitFail // never started: no summary to give
		}
	}
	printSummary(stdout, st, opts.json)
	if err != nil {
		return exitFail
	}
	return exitOK
}

// runReplay replays the archive's selection (-source archive): once, or
// with -loop pass after pass until stopped. Each pass is a producer run of
// its own: a new ring under the same name, with a new epoch (LAYOUT.md: the
// epoch identifies a producer run and is fixed at the ring's creation), so
// the passes' frames are told apart by the ring's epoch while each carries
// its original identity (origin epoch and seq); consumers follow from one
// pass to the next as after a producer restart (the archiver's -reattach).
// Each pass prints its summary line.
func runReplay(ctx context.Context, opts options, stdout io.Writer) int {
	log := opts.cfg.Logger
	if opts.replayEvent != 0 {
		ev, err := archive.FindEvent(opts.archiveDir, opts.replayEvent)
		if err != nil {
			log.Error("producer failed", "err", err)
			return exitFail
		}
		opts.replaySel = producer.ReplaySelection{Epoch: uint64(ev.Epoch), From: ev.FirstSeq, To: ev.LastSeq}
	}
	for pass := 1; ; pass++ {
		rep, g, err := producer.OpenArchiveReplay(opts.archiveDir, opts.replaySel)
		if err != nil {
			log.Error("producer failed", "err", err)
			return exitFail
		}
		opts.cfg.Replay, opts.cfg.Geometry = rep, g
		speed := any(opts.cfg.Speed)
		if opts.cfg.Speed == 0 {
			speed = "max"
		}
		attrs := []any{"archive", opts.archiveDir, "geometry", fmt.Sprintf("%dx%d %s stride %d", g.Width, g.Height, g.Format, g.Stride),
			"from", opts.replaySel.From, "to", opts.replaySel.To, "speed", speed}
		if opts.loop {
			attrs = append(attrs, "pass", pass)
		}
		log.Info("replaying", attrs...)
		code := runOnce(ctx, opts, stdout)
		n, b := rep.Replayed()
		rep.Close()
		log.Info("replayed", "frames", n, "bytes", b, "copies", n)
		if !opts.loop || code != exitOK || ctx.Err() != nil {
			return code
		}
	}
}

// parseFaults reads -faults: CAUSE:N pairs, comma-separated.
func parseFaults(s string) ([native.MaxFaults]native.Fault, error) {
	var fs [native.MaxFaults]native.Fault
	if s == "" {
		return fs, nil
	}
	parts := strings.Split(s, ",")
	if len(parts) > native.MaxFaults {
		return fs, fmt.Errorf("-faults %q: at most %d faults", s, native.MaxFaults)
	}
	for i, p := range parts {
		name, every, ok := strings.Cut(p, ":")
		cause, err := loss.Parse(name)
		n, nerr := strconv.ParseUint(every, 10, 64)
		if !ok || err != nil || nerr != nil || n < 2 {
			return fs, fmt.Errorf("-faults %q: want CAUSE:N with N >= 2, causes incomplete, timeout, size_mismatch, source_error, underrun, camera_lost, replay_gap", s)
		}
		fs[i] = native.Fault{Cause: cause, Every: n}
	}
	return fs, nil
}

func printSummary(w io.Writer, st producer.Stats, asJSON bool) {
	if asJSON {
		b, _ := json.Marshal(summary{Stats: st, FPS: st.FPS(), Dropped: st.DropTotal()})
		fmt.Fprintf(w, "%s\n", b)
		return
	}
	fmt.Fprintf(w, "ring=%s source=%s mode=%s frames=%d published=%d dropped=%d", st.Ring, st.Source, st.Mode,
		st.Frames, st.Published, st.DropTotal())
	for _, c := range st.Drops.Nonzero() {
		fmt.Fprintf(w, " drop_%s=%d", c, st.Drops[c])
	}
	fmt.Fprintf(w, " copies=%d elapsed=%s fps=%.1f", st.Copies, st.Elapsed.Round(time.Millisecond), st.FPS())
	for _, k := range slices.Sorted(maps.Keys(st.SourceStats)) {
		if v := st.SourceStats[k]; v != 0 { // -json has them all
			fmt.Fprintf(w, " source.%s=%d", k, v)
		}
	}
	fmt.Fprintln(w)
}

// listCameras prints the cameras Aravis finds, one a line.
func listCameras(stdout, stderr io.Writer) int {
	cams, err := native.ListCameras()
	if err != nil {
		fmt.Fprintln(stderr, "producer:", err)
		return exitFail
	}
	if len(cams) == 0 {
		fmt.Fprintln(stderr, "producer: no camera found (GigE Vision: on a reachable subnet and not firewalled, UDP 3956; USB3 Vision: plugged in, with access to its USB device)")
		return exitOK
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CAMERA (-camera)\tADDRESS\tPHYSICAL ID\tVENDOR\tMODEL\tSERIAL\tPROTOCOL")
	for _, c := range cams {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, orDash(c.Address), orDash(c.PhysicalID),
			orDash(c.Vendor), orDash(c.Model), orDash(c.Serial), orDash(c.Protocol))
	}
	tw.Flush()
	return exitOK
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// summary is the -json summary line: the Stats plus derived figures.
type summary struct {
	producer.Stats
	FPS     float64 `json:"fps"`
	Dropped uint64  `json:"dropped"`
}

// help is the producer's -h text around its flags.
var help = cli.Help{
	Usage: "producer [-ring NAME] [-source synthetic|sdk|gst|aravis] [flags]",
	About: `Creates a ring and fills it from a frame source until SIGINT/SIGTERM,
-duration, or the end of the source's stream. Consumers attach by the ring's
name at any time. The default source is synthetic (pure Go, in every build);
sdk is the simulated C frame grabber (needs cgo); gst and aravis need builds
with -tags gst / -tags aravis. Logs go to stderr, the final summary to stdout.`,
	More: `examples:
  producer -ring cam0 -width 1920 -height 1080 -format Mono8 -fps 60
  producer -ring cam0 -source gst -pipeline "videotestsrc ! video/x-raw,format=GRAY8"
  producer -ring cam0 -source aravis -camera 192.168.1.20 -set PixelFormat=Mono8

` + cli.ExitStatus,
}

// parseFlags parses the command line; -h prints the help to stdout.
func parseFlags(args []string, stdout io.Writer) (options, error) {
	var o options
	c := &o.cfg
	fs := cli.NewFlagSet("producer", help)

	fs.StringVar(&c.Name, "ring", "default", "ring `name` (socket in the runtime directory)")
	fs.StringVar(&c.SocketPath, "socket", "", "explicit socket `path` (instead of -ring's)")
	fs.IntVar(&c.Slots, "slots", producer.DefaultSlots, "ring `slots`")
	mode := fs.String("socket-mode", "0660", "socket permission `bits` (octal)")
	uids := intList{}
	gids := intList{}
	fs.Var(&uids, "allow-uid", "allow consumers with this `uid` (comma-separated or repeated; none: any)")
	fs.Var(&gids, "allow-gid", "allow consumers with this `gid` (comma-separated or repeated; none: any)")
	fs.DurationVar(&c.EvictAfter, "evict-after", 2*time.Second, "evict a lossless consumer that keeps the producer without a free slot this long")
	fs.BoolVar(&c.HugePages, "huge-pages", false, "back the data segment with huge pages (falls back if unavailable)")
	fs.BoolVar(&c.Prefault, "prefault", false, "fault the data segment in at creation")

	fs.StringVar(&c.Source, "source", native.KindSynthetic, "frame `source`: synthetic (pure Go, every build), sdk (the simulated C frame grabber, needs cgo), gst (a GStreamer pipeline: -pipeline; needs a build with -tags gst) aravis (a GenICam camera: -camera, -set; needs a build with -tags aravis) or archive (replay an archive: -archive)")
	fs.StringVar(&o.archiveDir, "archive", "", "with -source archive: the archive `directory` to replay (its frames' geometry and format; -from, -to, -epoch select, -speed paces)")
	fs.Uint64Var(&o.replaySel.From, "from", 0, "with -source archive: the first ring sequence `number` to replay (0: the first)")
	fs.Uint64Var(&o.replaySel.To, "to", 0, "with -source archive: the last ring sequence `number` to replay (0: to the end)")
	fs.Uint64Var(&o.replayEvent, "event", 0, "with -source archive: replay the frames of this event `id` of an events archive (archiver events)")
	replayEpoch := fs.String("epoch", "", "with -source archive: replay only the recording's producer run with this epoch (16 hex digits)")
	fs.BoolVar(&o.loop, "loop", false, "with -source archive: replay the selection again and again, each pass a new ring with a new epoch (until SIGINT/SIGTERM or -duration)")
	fs.IntVar(&c.WaitConsumers, "wait-consumers", 0, "hold the first frame back until `n` consumers are attached (e.g. a replay into a lossless archiver)")
	speed := fs.String("speed", "1", "with -source archive: `factor` on the original frame spacing (2: twice as fast), or max (as fast as slots come back)")
	fs.StringVar(&c.Pipeline, "pipeline", "", "GStreamer source `description` for -source gst, ending in raw video, e.g. \"v4l2src device=/dev/video0\" (the producer adds its sink; the caps decide geometry, format and rate)")
	fs.IntVar(&c.Geometry.Width, "width", producer.DefaultWidth, "frame width in `pixels`")
	fs.IntVar(&c.Geometry.Height, "height", producer.DefaultHeight, "frame height in `pixels`")
	fs.IntVar(&c.Geometry.Stride, "stride", 0, "`bytes` per row (0: packed)")
	format := fs.String("format", producer.DefaultFormat.String(), "pixel `format`: "+frame.FormatNames())
	fps := fs.Float64("fps", producer.DefaultFrameRate, "frames per second (0: free run, as fast as slots come back)")
	fs.BoolVar(&c.Defects, "defects", false, "inject the pattern's defects")
	fs.Uint64Var(&c.DefectEvery, "defect-every", 0, "with -defects, only into frames whose id is a multiple of `n` (sparse defects; synthetic source; 0: every frame)")
	faults := fs.String("faults", "", "synthetic source only: lose frames on purpose, `CAUSE:N,...` (every Nth frame; causes incomplete, timeout, size_mismatch, source_error, underrun (a frame cut short), camera_lost, replay_gap)")
	fs.BoolVar(&c.Copy, "copy", false, "safe-copy mode: the grabber fills private buffers, copied into slots")
	fs.IntVar(&c.QueueDepth, "queue", 0, "buffers kept queued in the grabber (0: default)")

	fs.StringVar(&c.Camera.Camera, "camera", "", "with -source aravis: the camera, by the id -list-cameras prints, its MAC or its IP address / host name (none: the first found)")
	sets := settingList{}
	fs.Var(&sets, "set", "with -source aravis: set a GenICam `Feature=Value` before acquisition (repeatable, applied in order; e.g. -set Width=1280 -set PixelFormat=Mono8 -set ExposureTime=5000 -set AcquisitionFrameRate=50)")
	fs.IntVar(&c.Camera.PacketSize, "packet-size", 0, "with -source aravis, GigE Vision: stream packet size in bytes (0: negotiate the largest the network carries, -1: keep the camera's)")
	resend := fs.Bool("packet-resend", true, "with -source aravis, GigE Vision: ask the camera to resend lost packets (false: a frame with a lost packet is dropped at once, as incomplete)")
	fs.BoolVar(&o.listCameras, "list-cameras", false, "list the cameras Aravis finds (GigE Vision, USB3 Vision) and exit")

	fs.BoolVar(&c.ExitWatch, "exit-watch", true, "also observe consumer exits in the kernel with eBPF, reclaiming a dying consumer before its memory is torn down (needs CAP_BPF/root; when unavailable the reason is logged and supervision uses the socket and pidfd only)")
	fs.DurationVar(&c.StatsInterval, "stats-interval", producer.DefaultStatsInterval, "period of the stats log line (0: never)")
	fs.DurationVar(&o.duration, "duration", 0, "stop after this long (0: run until signalled)")
	fs.StringVar(&o.logFormat, "log-format", "text", "log `format`: "+cli.LogFormats)
	level := fs.String("log-level", "info", "log `level`: "+cli.LogLevels)
	fs.BoolVar(&o.json, "json", false, "print the final summary as JSON")
	fs.StringVar(&o.debugAddr, "debug-addr", "", "serve net/http/pprof on this `address` (a bare :PORT is localhost; empty: off)")
	fs.IntVar(&c.HoldQuota, "hold-quota", 0, "the most slots one consumer may hold (0: slots - queue - 2); a consumer over it is evicted")

	if err := fs.Parse(args, stdout); err != nil {
		return o, err
	}
	if err := cli.CheckRing(c.Name, c.SocketPath); err != nil {
		return o, err
	}
	c.Camera.Settings, c.Camera.NoResend = sets, !*resend
	if o.listCameras && !native.AravisAvailable {
		return o, fmt.Errorf("-list-cameras: %w", native.ErrNoAravis)
	}
	if err := checkCamera(fs.FlagSet, c); err != nil {
		return o, err
	}
	if err := checkGst(fs.FlagSet, c); err != nil {
		return o, err
	}
	f, err := frame.ParseFormat(*format)
	if err != nil {
		return o, fmt.Errorf("-format %q: %w", *format, err)
	}
	c.Geometry.Format = f
	if c.Faults, err = parseFaults(*faults); err != nil {
		return o, err
	}
	if err := checkReplay(fs.FlagSet, &o, *replayEpoch, *speed); err != nil {
		return o, err
	}
	if c.DefectEvery > 1 && c.Source != native.KindSynthetic {
		return o, fmt.Errorf("-defect-every: the synthetic source only (-source synthetic)")
	}
	m, err := strconv.ParseUint(*mode, 8, 32)
	if err != nil || m > 0o777 {
		return o, fmt.Errorf("-socket-mode %q: want octal permission bits", *mode)
	}
	c.SocketMode = os.FileMode(m)
	c.AllowUIDs, c.AllowGIDs = uids, gids
	switch {
	case *fps == 0:
		c.FrameRate = producer.FreeRun
	case *fps < 0:
		return o, fmt.Errorf("-fps %v: want 0 (free run) or a positive rate", *fps)
	default:
		c.FrameRate = *fps
	}
	switch {
	case c.StatsInterval == 0:
		c.StatsInterval = -1 // never
	case c.StatsInterval < 0:
		return o, fmt.Errorf("-stats-interval %v: want 0 (never) or a positive period", c.StatsInterval)
	}
	if o.duration < 0 {
		return o, fmt.Errorf("-duration %v: want 0 or a positive duration", o.duration)
	}
	if c.Slots <= 0 || c.QueueDepth < 0 || c.Geometry.Stride < 0 {
		return o, errors.New("-slots must be positive; -queue and -stride 0 or positive")
	}
	if c.Source != native.KindAravis && c.Source != native.KindGst {
		if w, h := c.Geometry.Width, c.Geometry.Height; w < 1 || h < 1 || w > frame.MaxDimension || h > frame.MaxDimension {
			return o, fmt.Errorf("-width %d -height %d: want 1..%d each", w, h, frame.MaxDimension)
		}
	}
	if _, err := cli.NewLogger(io.Discard, o.logFormat, *level); err != nil {
		return o, err
	}
	if err := o.logLevel.UnmarshalText([]byte(*level)); err != nil {
		return o, err
	}
	if c.Source == native.KindAravis {
		c.Geometry = frame.Geometry{} // the camera's, once its features are set
	}
	return o, nil
}

// checkReplay checks the flags of -source archive (the archive is opened
// by run) and that they come only with it.
func checkReplay(fs *flag.FlagSet, o *options, epoch, speed string) error {
	c := &o.cfg
	var set []string
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "archive", "from", "to", "epoch", "speed", "event", "loop":
			if c.Source != native.KindArchive {
				set = append(set, "-"+f.Name)
			}
		case "width", "height", "stride", "format", "fps", "defects", "defect-every", "faults":
			if c.Source == native.KindArchive {
				set = append(set, "-"+f.Name)
			}
		}
	})
	if len(set) > 0 {
		if c.Source == native.KindArchive {
			return fmt.Errorf("%s: not with -source archive, whose frames decide", strings.Join(set, ", "))
		}
		return fmt.Errorf("%s: for -source archive", strings.Join(set, ", "))
	}
	if c.Source != native.KindArchive {
		return nil
	}
	if o.archiveDir == "" {
		return errors.New("-source archive needs -archive DIR")
	}
	if epoch != "" {
		e, err := strconv.ParseUint(epoch, 16, 64)
		if err != nil || e == 0 {
			return fmt.Errorf("-epoch %q: want the recording's epoch, 16 hex digits", epoch)
		}
		o.replaySel.Epoch = e
	}
	if o.replayEvent != 0 && (o.replaySel != producer.ReplaySelection{}) {
		return errors.New("-event selects the frames itself: not with -from, -to, -epoch")
	}
	if o.replaySel.To != 0 && o.replaySel.To < o.replaySel.From {
		return fmt.Errorf("-from %d -to %d: an empty range", o.replaySel.From, o.replaySel.To)
	}
	if speed == "max" {
		c.Speed = 0
		return nil
	}
	v, err := strconv.ParseFloat(speed, 64)
	if err != nil || !(v > 0) || math.IsInf(v, 0) {
		return fmt.Errorf("-speed %q: want a positive factor or max", speed)
	}
	c.Speed = v
	return nil
}

// cameraFeatureOf maps the geometry flags to the GenICam features that set
// the same with a camera.
var cameraFeatureOf = map[string]string{
	"width":   "-set Width=N",
	"height":  "-set Height=N",
	"stride":  "nothing (a camera's rows are packed)",
	"format":  "-set PixelFormat=NAME",
	"fps":     "-set AcquisitionFrameRate=N (some cameras also need -set AcquisitionFrameRateEnable=true)",
	"defects": "nothing (defects are the synthetic pattern's)",
	"faults":  "nothing (faults are the synthetic source's)",
}

// cameraFlags only make sense with -source aravis.
var cameraFlags = map[string]bool{"camera": true, "set": true, "packet-size": true, "packet-resend": true}

// settingList is the repeatable -set Feature=Value.
type settingList []native.FeatureSetting

func (l *settingList) String() string {
	if l == nil {
		return ""
	}
	s := make([]string, len(*l))
	for i, v := range *l {
		s[i] = v.String()
	}
	return strings.Join(s, " ")
}

func (l *settingList) Set(v string) error {
	s, err := native.ParseFeatureSetting(v)
	if err != nil {
		return err
	}
	*l = append(*l, s)
	return nil
}

// checkCamera checks the flags that go with -source aravis: a build that
// has the Aravis backend, and none of the flags the camera's features
// decide (each error names the feature to set instead); the camera flags
// are refused with the other sources.
func checkCamera(fs *flag.FlagSet, c *producer.Config) error {
	var bad error
	if c.Source != native.KindAravis {
		fs.Visit(func(f *flag.Flag) {
			if cameraFlags[f.Name] && bad == nil {
				bad = fmt.Errorf("-%s needs -source aravis", f.Name)
			}
		})
		return bad
	}
	if !native.AravisAvailable {
		return fmt.Errorf("-source aravis: %w", native.ErrNoAravis)
	}
	fs.Visit(func(f *flag.Flag) {
		if hint, ok := cameraFeatureOf[f.Name]; ok && bad == nil {
			bad = fmt.Errorf("-%s with -source aravis: the camera's features decide it: use %s", f.Name, hint)
		}
	})
	return bad
}

// checkGst checks the flags that go with -source gst: a pipeline, a build
// that has the GStreamer source, and none of the flags the caps decide.
func checkGst(fs *flag.FlagSet, c *producer.Config) error {
	if c.Source != native.KindGst {
		if c.Pipeline != "" {
			return errors.New("-pipeline is for -source gst")
		}
		return nil
	}
	if !native.GstAvailable {
		return fmt.Errorf("-source gst: %w", native.ErrNoGst)
	}
	if c.Pipeline == "" {
		return errors.New(`-source gst needs -pipeline "DESCRIPTION", e.g. "v4l2src device=/dev/video0"`)
	}
	var set []string
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "width", "height", "stride", "format", "fps", "defects", "defect-every", "faults":
			set = append(set, "-"+f.Name)
		}
	})
	if len(set) > 0 {
		return fmt.Errorf("%s: not with -source gst, whose caps decide (add them to the pipeline: ... ! video/x-raw,format=GRAY8,width=640,height=480,framerate=30/1)", strings.Join(set, ", "))
	}
	return nil
}

// intList is a repeatable, comma-separated list of integers.
type intList []int

func (l *intList) String() string {
	if l == nil {
		return ""
	}
	s := make([]string, len(*l))
	for i, v := range *l {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, ",")
}

func (l *intList) Set(v string) error {
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 0 {
			return fmt.Errorf("%q is not an id", f)
		}
		*l = append(*l, n)
	}
	return nil
}
