package bench

// The GStreamer baseline: videotestsrc → shmsink in one gst-launch-1.0,
// shmsrc → fakesink in another. The frames are GStreamer's (a solid
// pattern of the same size), not ours: gst-launch cannot be fed our
// frames without a pipe copy in front of shmsink. The receiver
// timestamps buffers on arrival (do-timestamp) and prints each one
// (fakesink silent=false, -v); the rate is taken between the first and
// the last measured buffer's timestamps. shmsrc hands out buffers that
// alias the shared memory, so the consumer side is lease-only.

import (
	"bufio"
	"context"
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
	for _, payload := range h.cfg.GStreamerPayloads {
		if ctx.Err() != nil {
			return
		}
		label := "gstreamer " + sizeName(payload)
		h.log.Info("scenario", "name", label)
		row, err := h.gstRun(ctx, gst, payload)
		if err != nil {
			h.fail(label, err)
			continue
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

func (h *harness) gstRun(ctx context.Context, gst string, payload int) (GStreamerRow, error) {
	const warm = 10
	n := h.cfg.GStreamerFrames
	row := GStreamerRow{Payload: payload, Sent: n}
	ctx, cancel := context.WithTimeout(ctx, h.cfg.GStreamerCap)
	defer cancel()
	w, ht := dims(payload)
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
	recv.WaitDelay = time.Second
	out, err := recv.StdoutPipe()
	if err != nil {
		return row, fmt.Errorf("start gst receiver: %w", err)
	}
	if err := recv.Start(); err != nil {
		return row, fmt.Errorf("start gst receiver: %w", err)
	}
	defer func() {
		cancel()
		recv.Wait()
	}()
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 0, 1<<16), 1<<20)
	seen := 0
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
