package bench

// The GStreamer baseline: videotestsrc → shmsink in one gst-launch-1.0,
// shmsrc → fakesink in another. The frames are GStreamer's (a solid
// pattern of the same size), not ours: gst-launch cannot be fed our
// frames without a pipe copy in front of shmsink. The receiver
// timestamps buffers on arrival (do-timestamp) and prints each one
// (fakesink silent=false, -v); the rate is taken between the first and
// the last measured buffer's timestamps. shmsrc hands out buffers that
// alias the shared memory, so the consumer side is lease-only.
//
// framesrc (clients/gstreamer) is measured on the same geometry the same
// way: the ring rows' producer (its filler writes every byte of every
// frame, as videotestsrc pattern=white fills it) -> ring -> framesrc
// (lossless, zero-copy: each buffer wraps its slot) -> fakesink.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"time"
)

var gstPTS = regexp.MustCompile(`chain .*pts: (\d+):(\d+):(\d+)\.(\d+)`)

func (h *harness) gstreamer(ctx context.Context) {
	gst, err := exec.LookPath("gst-launch-1.0")
	if err != nil {
		h.skip("gstreamer: gst-launch-1.0 is not installed (Debian/Ubuntu: apt-get install gstreamer1.0-tools gstreamer1.0-plugins-bad)")
		return
	}
	if err := exec.CommandContext(ctx, "gst-inspect-1.0", "--exists", "shmsink").Run(); err != nil {
		h.skip("gstreamer: the shm plugin (shmsink/shmsrc, gstreamer1.0-plugins-bad) is not installed")
		return
	}
	type geom struct{ w, h int }
	var geoms []geom
	for _, payload := range h.cfg.GStreamerPayloads {
		w, ht := dims(payload)
		geoms = append(geoms, geom{w, ht})
	}
	if h.cfg.GStreamer4K {
		geoms = append(geoms, geom{3840, 2160})
	}
	if h.cfg.FramesrcPlugin == "" {
		h.skip("gstreamer: no framesrc runs (frbench -framesrc-plugin DIR; bench/run.sh builds the plugin)")
	} else {
		// Fill framesrc's registry first: its scan of every plugin is not
		// the first run's CPU time.
		insp := exec.CommandContext(ctx, "gst-inspect-1.0", "framesrc")
		insp.Env = h.framesrcEnv()
		if out, err := insp.CombinedOutput(); err != nil {
			h.fail("gstreamer framesrc", fmt.Errorf("gst-inspect-1.0 framesrc: %w: %s", err, out))
			h.cfg.FramesrcPlugin = ""
		}
	}
	for _, g := range geoms {
		if ctx.Err() != nil {
			return
		}
		payload := g.w * g.h
		label := fmt.Sprintf("gstreamer %s %dx%d", sizeName(payload), g.w, g.h)
		h.log.Info("scenario", "name", label)
		row, err := h.gstRun(ctx, gst, g.w, g.h)
		if err != nil {
			h.fail(label, err)
			continue
		}
		if h.cfg.FramesrcPlugin != "" {
			h.log.Info("scenario", "name", label+" framesrc")
			f, err := h.framesrcRun(ctx, gst, g.w, g.h)
			if err != nil {
				h.fail(label+" framesrc", err)
			} else {
				row.Framesrc = &f
				if row.FPS > 0 {
					row.VsShm = f.FPS / row.FPS
				}
			}
		}
		for _, r := range h.rep.Throughput {
			if r.Payload == payload && r.Consumers == 1 && r.Mode == "lossless" && r.Read == ReadLease && row.FPS > 0 {
				row.RingFPS, row.VsRing = r.FPS, r.FPS/row.FPS
			}
		}
		h.rep.GStreamer = append(h.rep.GStreamer, row)
	}
}

func (h *harness) skip(why string) {
	h.rep.Skipped = append(h.rep.Skipped, why)
	h.log.Info("skipped", "why", why)
}

const gstWarm = 10

func (h *harness) gstRun(ctx context.Context, gst string, w, ht int) (GStreamerRow, error) {
	const warm = gstWarm
	n := h.cfg.GStreamerFrames
	payload := w * ht
	row := GStreamerRow{Payload: payload, Width: w, Height: ht, Sent: n}
	ctx, cancel := context.WithTimeout(ctx, h.cfg.GStreamerCap)
	defer cancel()
	caps := fmt.Sprintf("video/x-raw,format=GRAY8,width=%d,height=%d,framerate=0/1", w, ht)
	sock := filepath.Join(h.dir, fmt.Sprintf("gst%d.sock", payload))
	shmSize := max(16*payload, 64*MiB)
	send := exec.CommandContext(ctx, gst, "-q", "videotestsrc", fmt.Sprintf("num-buffers=%d", n+warm), "pattern=white",
		"!", caps, "!", "shmsink", "socket-path="+sock, fmt.Sprintf("shm-size=%d", shmSize), "wait-for-connection=true", "sync=false")
	// Interrupted, gst-launch takes the pipeline down and shmsink unlinks
	// its shared memory area; killed (after WaitDelay), it cannot, and the
	// area it leaves is removed by name (shmsink names it
	// /dev/shm/shmpipe.PID.N).
	send.Cancel = func() error { return send.Process.Signal(os.Interrupt) }
	send.WaitDelay = time.Second
	if err := send.Start(); err != nil {
		return row, fmt.Errorf("start gst sender: %w", err)
	}
	defer func() {
		cancel()
		send.Wait()
		removeShmArea(send.Process.Pid)
	}()
	for {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if ctx.Err() != nil {
			return row, fmt.Errorf("gst sender: no socket: %w", ctx.Err())
		}
		time.Sleep(5 * time.Millisecond)
	}
	recv := exec.CommandContext(ctx, gst, "-v", "shmsrc", "socket-path="+sock, "is-live=true", "do-timestamp=true",
		"!", caps, "!", "fakesink", "sync=false", "silent=false")
	run, err := h.gstReceive(ctx, recv, payload)
	row.Received, row.FPS, row.GBps, row.Note, row.CPUPerFrameNs = run.Received, run.FPS, run.GBps, run.Note, run.CPUPerFrameNs
	return row, err
}

// framesrcRun measures the harness's ring producer (the ring rows' own:
// its filler writes every byte, flat out, gated by the lossless
// consumer) -> framesrc (lossless, zero-copy) -> fakesink on w x ht GRAY8
// frames.
func (h *harness) framesrcRun(ctx context.Context, gst string, w, ht int) (GStreamerRun, error) {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.GStreamerCap)
	defer cancel()
	sock := filepath.Join(h.dir, fmt.Sprintf("framesrc%dx%d.sock", w, ht))
	p := params{Role: roleRingProducer, Path: sock, Payload: w * ht, Width: w, Height: ht, Slots: 16, Consumers: 1,
		Frames: h.cfg.GStreamerFrames + 2*gstWarm, DurationNs: int64(h.cfg.GStreamerCap), CapNs: int64(h.cfg.GStreamerCap),
		HugePages: h.cfg.HugePages}
	b, err := json.Marshal(p)
	if err != nil {
		return GStreamerRun{}, fmt.Errorf("encode params: %w", err)
	}
	prod := exec.CommandContext(ctx, h.cfg.Exe, h.cfg.ExeArgs...)
	prod.Env = append(os.Environ(), EnvRole+"="+p.Role, envParams+"="+string(b))
	prod.WaitDelay = time.Second
	stdin, err := prod.StdinPipe() // the child ends at EOF: when this run is over
	if err != nil {
		return GStreamerRun{}, fmt.Errorf("start ring producer: %w", err)
	}
	if err := prod.Start(); err != nil {
		return GStreamerRun{}, fmt.Errorf("start ring producer: %w", err)
	}
	defer func() {
		stdin.Close()
		cancel()
		prod.Wait()
	}()
	for {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if ctx.Err() != nil {
			return GStreamerRun{}, fmt.Errorf("ring producer: no socket: %w", ctx.Err())
		}
		time.Sleep(5 * time.Millisecond)
	}
	recv := exec.CommandContext(ctx, gst, "-v", "framesrc", "socket="+sock, "lossless=true", "do-timestamp=true",
		"!", "fakesink", "sync=false", "silent=false")
	recv.Env = h.framesrcEnv()
	return h.gstReceive(ctx, recv, w*ht)
}

// framesrcEnv finds the plugin, with a registry of this run's own.
func (h *harness) framesrcEnv() []string {
	return append(os.Environ(), "GST_PLUGIN_PATH="+h.cfg.FramesrcPlugin, "GST_REGISTRY="+filepath.Join(h.dir, "gst-registry.bin"))
}

// gstReceive runs a gst-launch-1.0 -v receiver ending in fakesink
// silent=false and measures its rate over GStreamerFrames buffers after
// gstWarm.
func (h *harness) gstReceive(ctx context.Context, recv *exec.Cmd, payload int) (row GStreamerRun, err error) {
	const warm = gstWarm
	n := h.cfg.GStreamerFrames
	recv.WaitDelay = time.Second
	out, err := recv.StdoutPipe()
	if err != nil {
		return row, fmt.Errorf("start gst receiver: %w", err)
	}
	if err := recv.Start(); err != nil {
		return row, fmt.Errorf("start gst receiver: %w", err)
	}
	seen := 0
	defer func() {
		recv.Process.Kill()
		recv.Wait()
		// The receiver's whole CPU time (start-up and printing each buffer
		// included) over every buffer it took.
		if ps := recv.ProcessState; ps != nil && seen > 0 {
			row.CPUPerFrameNs = float64((ps.UserTime() + ps.SystemTime()).Nanoseconds()) / float64(seen)
		}
	}()
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 0, 1<<16), 1<<20)
	var first, last time.Duration
	for sc.Scan() {
		m := gstPTS.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		seen++
		if seen <= warm {
			continue
		}
		hh, _ := strconv.Atoi(m[1])
		mm, _ := strconv.Atoi(m[2])
		ss, _ := strconv.Atoi(m[3])
		frac := m[4]
		ns, _ := strconv.Atoi((frac + "000000000")[:9])
		t := time.Duration(hh)*time.Hour + time.Duration(mm)*time.Minute + time.Duration(ss)*time.Second + time.Duration(ns)
		if seen == warm+1 {
			first = t
		}
		last = t
		row.Received++
		if seen == n+warm {
			break
		}
	}
	if row.Received < n {
		row.Note = fmt.Sprintf("received %d of %d buffers before the %v cap", row.Received, n, h.cfg.GStreamerCap)
	}
	if row.Received < 2 || last <= first {
		if err := ctx.Err(); err != nil && !errors.Is(err, context.Canceled) {
			return row, fmt.Errorf("gst run: %w: %d buffers", errTimeout, row.Received)
		}
		return row, fmt.Errorf("gst run: %d buffers received", row.Received)
	}
	row.FPS = float64(row.Received-1) / (last - first).Seconds()
	row.GBps = row.FPS * float64(payload) / 1e9
	return row, nil
}

// removeShmArea removes what a shmsink in process pid left in /dev/shm.
func removeShmArea(pid int) {
	left, _ := filepath.Glob(fmt.Sprintf("/dev/shm/shmpipe.%d.*", pid))
	for _, f := range left {
		os.Remove(f)
	}
}
