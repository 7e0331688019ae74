//go:build aravis && cgo

package main

// The command on Aravis's GigE Vision simulator, in a private network
// namespace: -list-cameras; packet loss with resend off (counted
// incomplete-frame drops, never a corrupted frame in the ring) and on
// (resend counters); the camera killed and restarted under a running
// producer (reported, resumed, counted).

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/framering/framering/frame"
	"github.com/framering/framering/internal/testmain"
	"github.com/framering/framering/loss"
	"github.com/framering/framering/producer"
	"github.com/framering/framering/ringbuf"
)

// proc is the command running as a child process.
type proc struct {
	cmd    *exec.Cmd
	stdout bytes.Buffer
	mu     sync.Mutex
	logs   []string
	done   chan struct{}
}

func startCommand(t *testing.T, args ...string) *proc {
	t.Helper()
	p := &proc{done: make(chan struct{})}
	p.cmd = exec.Command(os.Args[0], append([]string{"-test.run=^$", "--"}, args...)...)
	p.cmd.Env = append(os.Environ(), roleEnv+"=main")
	p.cmd.Stdout = &p.stdout
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.logs = append(p.logs, sc.Text())
			p.mu.Unlock()
		}
	}()
	t.Cleanup(func() { p.cmd.Process.Kill(); p.cmd.Wait() })
	p.waitLog(t, "producer ready")
	return p
}

// waitLog waits for a log line containing s and returns it.
func (p *proc) waitLog(t *testing.T, s string) string {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for {
		p.mu.Lock()
		for _, l := range p.logs {
			if strings.Contains(l, s) {
				p.mu.Unlock()
				return l
			}
		}
		p.mu.Unlock()
		select {
		case <-p.done:
			t.Fatalf("the producer exited before logging %q: %s", s, p.allLogs())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the producer never logged %q: %s", s, p.allLogs())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (p *proc) allLogs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.logs, "\n")
}

// stop sends SIGTERM, expects exit 0 and returns the JSON summary.
func (p *proc) stop(t *testing.T) producer.Stats {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("after SIGTERM: %v\n%s", err, p.allLogs())
	}
	<-p.done
	var st producer.Stats
	if err := json.Unmarshal(p.stdout.Bytes(), &st); err != nil {
		t.Fatalf("summary %q: %v", p.stdout.String(), err)
	}
	return st
}

// checker reads the ring and checks every frame against the simulator's
// pattern for its block id (the low 16 bits of which the frame's flags
// carry): the ring never holds a corrupted frame.
type checker struct {
	t       *testing.T
	r       *ringbuf.Reader
	g       frame.Geometry
	checked int
}

func attachChecker(t *testing.T, ring string, g frame.Geometry) *checker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	r, err := ringbuf.Attach(ctx, ringbuf.Options{Name: ring, Consumer: "pattern-check"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return &checker{t: t, r: r, g: g}
}

// read checks n more frames.
func (c *checker) read(n int) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	for range n {
		l, err := c.r.Next(ctx)
		if err != nil {
			c.t.Fatal(err)
		}
		m := l.Meta()
		want := testmain.FakeCameraFrame(c.g, uint64(m.Flags>>16), 1)
		if m.Width != uint32(c.g.Width) || m.Height != uint32(c.g.Height) || m.Format != c.g.Format ||
			!bytes.Equal(l.Bytes()[:c.g.Size()], want) {
			c.t.Fatalf("frame seq %d id %d (block %d) is not the camera's: %+v", m.Seq, m.FrameID, m.Flags>>16, m)
		}
		l.Release()
		c.checked++
	}
}

func TestAravisCommand(t *testing.T) {
	if !testmain.PrivateNetwork(t) {
		return
	}
	t.Run("ListCameras", func(t *testing.T) {
		testmain.StartFakeCamera(t, "FRCMD", 0)
		var out, errb bytes.Buffer
		if code := run([]string{"-list-cameras"}, &out, &errb); code != exitOK {
			t.Fatalf("exit %d: %s", code, errb.String())
		}
		if !strings.Contains(out.String(), "CAMERA (-camera)") || !strings.Contains(out.String(), "Aravis-Fake-FRCMD") ||
			!strings.Contains(out.String(), testmain.FakeCameraAddr) {
			t.Fatalf("listed:\n%s", out.String())
		}
		t.Logf("\n%s", out.String())
	})
	for _, resend := range []bool{false, true} {
		name := map[bool]string{false: "PacketLossResendOff", true: "PacketLossResendOn"}[resend]
		t.Run(name, func(t *testing.T) { testCommandPacketLoss(t, resend) })
	}
	t.Run("CameraKilledAndRestarted", testCommandCameraRestart)
}

var small = []string{"-set", "Width=64", "-set", "Height=64", "-set", "AcquisitionFrameRate=300"}

func testCommandPacketLoss(t *testing.T, resend bool) {
	testmain.StartFakeCamera(t, "FRLOSS", 30)
	ring := ringName()
	args := append([]string{"-ring", ring, "-source", "aravis", "-camera", testmain.FakeCameraAddr, "-json",
		"-log-format", "json", "-stats-interval", "200ms", "-packet-resend=" + map[bool]string{false: "false", true: "true"}[resend]}, small...)
	p := startCommand(t, args...)
	c := attachChecker(t, ring, frame.Packed(64, 64, frame.Mono8))
	c.read(60)
	// The stats line carries the camera's statistics (the nonzero ones).
	line := p.waitLog(t, `"missing_packets":`)
	st := p.stop(t)
	t.Logf("resend %v: %d frames checked; summary %+v", resend, c.checked, st)
	if st.Frames != st.Accounted() || st.Drops[loss.Incomplete]+st.Drops[loss.Timeout] == 0 {
		t.Fatalf("packets lost and no incomplete frame dropped: %+v", st)
	}
	s := st.SourceStats
	if s["missing_packets"] == 0 || s["completed_buffers"] < 60 {
		t.Fatalf("stream statistics: %v", s)
	}
	if resend != (s["resend_requests"] > 0) {
		t.Fatalf("resend %v, resend requests %d", resend, s["resend_requests"])
	}
	if !strings.Contains(line, `"msg":"producer stats"`) || !strings.Contains(line, `"source_stats":{`) {
		t.Fatalf("missing packets reported outside the stats line's source_stats: %s", line)
	}
}

func testCommandCameraRestart(t *testing.T) {
	cam := testmain.StartFakeCamera(t, "FRRESTART", 0)
	ring := ringName()
	p := startCommand(t, append([]string{"-ring", ring, "-source", "aravis", "-camera", testmain.FakeCameraAddr, "-json",
		"-log-format", "json", "-stats-interval", "0"}, small...)...)
	c := attachChecker(t, ring, frame.Packed(64, 64, frame.Mono8))
	c.read(30)
	cam.Kill()
	p.waitLog(t, "camera lost")
	time.Sleep(300 * time.Millisecond) // frames are due meanwhile: counted lost
	cam.Restart()
	p.waitLog(t, "camera back")
	c.read(30) // the same ring, the same consumer: frames again
	st := p.stop(t)
	t.Logf("%d frames checked; summary %+v", c.checked, st)
	if st.Frames != st.Accounted() || st.Drops[loss.CameraLost] == 0 || st.SourceStats["disconnects"] != 1 || st.SourceStats["reconnects"] != 1 {
		t.Fatalf("summary %+v", st)
	}
}

// TestAravisSoak (scripts/soak.sh; FRAMERING_SOAK=1): the producer on a
// lossy simulator (5 packets in 1000 dropped, resend off) that is killed
// and restarted every few seconds, for FRAMERING_ARAVIS_SOAK_SECONDS
// (default 120): every frame in the ring is the camera's, every loss
// counted, every disconnect followed by a reconnect, and the producer's
// descriptors and memory do not grow with reconnects.
func TestAravisSoak(t *testing.T) {
	if os.Getenv("FRAMERING_SOAK") == "" {
		t.Skip("a soak: scripts/soak.sh runs it (FRAMERING_SOAK=1)")
	}
	if !testmain.PrivateNetwork(t) {
		return
	}
	secs := 120
	if v, err := strconv.Atoi(os.Getenv("FRAMERING_ARAVIS_SOAK_SECONDS")); err == nil && v > 0 {
		secs = v
	}
	cam := testmain.StartFakeCamera(t, "FRSOAK", 5)
	ring := ringName()
	p := startCommand(t, append([]string{"-ring", ring, "-source", "aravis", "-camera", testmain.FakeCameraAddr, "-json",
		"-log-format", "json", "-stats-interval", "5s", "-packet-resend=false"}, small...)...)
	c := attachChecker(t, ring, frame.Packed(64, 64, frame.Mono8))
	c.read(100)
	fds0, rss0 := procUsage(t, p.cmd.Process.Pid)
	end := time.Now().Add(time.Duration(secs) * time.Second)
	kills := 0
	for time.Now().Before(end) {
		c.read(300) // about a second of frames
		cam.Kill()
		kills++
		time.Sleep(time.Duration(200+kills%5*200) * time.Millisecond)
		cam.Restart()
		c.read(100)
	}
	fds1, rss1 := procUsage(t, p.cmd.Process.Pid)
	st := p.stop(t)
	t.Logf("%d kills, %d frames checked; fds %d -> %d, rss %d -> %d KiB; summary %+v", kills, c.checked, fds0, fds1, rss0, rss1, st)
	if st.Frames != st.Accounted() || st.SourceStats["disconnects"] != uint64(kills) || st.SourceStats["reconnects"] != uint64(kills) {
		t.Fatalf("%d kills: summary %+v", kills, st)
	}
	if fds1 > fds0+2 || rss1 > rss0+64<<10 {
		t.Fatalf("the producer grows with reconnects: %d -> %d descriptors, %d -> %d KiB", fds0, fds1, rss0, rss1)
	}
}

// procUsage is a process's open descriptors and resident memory (KiB).
func procUsage(t *testing.T, pid int) (int, int) {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	rss := 0
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			rss, _ = strconv.Atoi(f[1])
		}
	}
	return len(ents), rss
}
