package testmain

import (
	_ "embed" // arvgrab's source
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/framering/framering/frame"
)

// FakeCameraAddr is where FakeCamera serves: loopback, inside the test's
// private network namespace.
const FakeCameraAddr = "127.0.0.1"

// FakeCameraBinary is Aravis's GigE Vision camera simulator (Debian
// package aravis-tools-cli; scripts/setup.sh installs it).
const FakeCameraBinary = "arv-fake-gv-camera-0.8"

// FakeCamera is Aravis's GigE Vision camera simulator running as a child
// process on loopback, serving the real GVCP/GVSP protocol. Its frames are
// a ramp that depends on the camera's frame (block) id, gain and exposure,
// so two clients that receive the same block id with the same settings get
// the same bytes. Start it only inside PrivateNetwork: GigE Vision
// discovery broadcasts on every interface the process has.
type FakeCamera struct {
	t         testing.TB
	serial    string
	lostRatio float64
	logPath   string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// StartFakeCamera starts the simulator with the given serial number and
// lost-packet ratio (packets per thousand the simulator drops on purpose,
// 0: none) and waits until it answers GigE Vision discovery. It is killed
// at the test's end.
func StartFakeCamera(t testing.TB, serial string, lostPerThousand float64) *FakeCamera {
	t.Helper()
	if !InPrivateNetwork() {
		t.Fatal("StartFakeCamera outside a private network namespace: call testmain.PrivateNetwork first")
	}
	c := &FakeCamera{t: t, serial: serial, lostRatio: lostPerThousand,
		logPath: filepath.Join(t.TempDir(), "fake-camera.log")}
	c.Restart()
	t.Cleanup(c.Kill)
	return c
}

// ID is the id Aravis lists the simulator under (what -camera takes).
func (c *FakeCamera) ID() string { return "Aravis-Fake-" + c.serial }

// Restart starts the simulator again after Kill (a fresh process: its
// frame ids start over) and waits until it answers.
func (c *FakeCamera) Restart() {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd != nil {
		c.t.Fatal("fake camera restarted while running")
	}
	logf, err := os.OpenFile(c.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	args := []string{"-i", FakeCameraAddr, "-s", c.serial}
	if c.lostRatio > 0 {
		args = append(args, "-r", strconv.FormatFloat(c.lostRatio, 'f', -1, 64))
	}
	cmd := exec.Command(FakeCameraBinary, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		c.t.Fatalf("start %s: %v", FakeCameraBinary, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(done) }()
	c.cmd, c.done = cmd, done
	deadline := time.Now().Add(20 * time.Second) // a hang guard, not a performance bound
	for {
		err := discover(FakeCameraAddr)
		if err == nil {
			return
		}
		select {
		case <-done:
			log, _ := os.ReadFile(c.logPath)
			c.t.Fatalf("%s exited at start:\n%s", FakeCameraBinary, log)
		default:
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s does not answer discovery: %v", FakeCameraBinary, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Pid is the simulator's process id (0 while it is killed).
func (c *FakeCamera) Pid() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd == nil {
		return 0
	}
	return c.cmd.Process.Pid
}

// Kill kills the simulator (SIGKILL: a camera unplugged) and waits for it.
// Killing a stopped camera does nothing.
func (c *FakeCamera) Kill() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd == nil {
		return
	}
	c.cmd.Process.Kill()
	<-c.done
	c.cmd, c.done = nil, nil
}

// discover sends one GigE Vision discovery command to addr and waits
// briefly for its acknowledge.
func discover(addr string) error {
	conn, err := net.Dial("udp4", net.JoinHostPort(addr, "3956"))
	if err != nil {
		return err
	}
	defer conn.Close()
	// GVCP header: key 0x42, flags (ack required), command DISCOVERY_CMD
	// (0x0002), payload length 0, request id 1.
	cmd := []byte{0x42, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x01}
	if _, err := conn.Write(cmd); err != nil {
		return err
	}
	conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	ack := make([]byte, 1024)
	n, err := conn.Read(ack)
	if err != nil {
		return err
	}
	if n < 8 || binary.BigEndian.Uint16(ack[2:]) != 0x0003 {
		return errors.New("not a discovery acknowledge")
	}
	if st := binary.BigEndian.Uint16(ack[0:]); st != 0 {
		return fmt.Errorf("discovery acknowledge status %#04x", st)
	}
	return nil
}

// FakeCameraScale is the simulator's brightness factor for a gain (its
// GainRaw feature) and an exposure in µs (ExposureTimeAbs): 1 at the
// defaults, 0 and 10000.
func FakeCameraScale(gain, exposureUS float64) float64 {
	return 1 + gain + math.Log10(exposureUS/10000)
}

// FakeCameraFrame is the frame the simulator sends as block id, for Mono8
// and Mono16 (arvfakecamera.c, arv_fake_camera_diagonal_ramp): a diagonal
// ramp moving with the id, times scale, clamped; nil for another format.
func FakeCameraFrame(g frame.Geometry, id uint64, scale float64) []byte {
	out := make([]byte, g.Size())
	for y := 0; y < g.Height; y++ {
		for x := 0; x < g.Width; x++ {
			switch g.Format {
			case frame.Mono8:
				v := float64((uint64(x)+id+uint64(y))%255) * scale
				out[y*g.Stride+x] = byte(min(max(v, 0), 255))
			case frame.Mono16:
				v := float64((256*uint64(x)+256*id+256*uint64(y))%65535) * scale
				p := uint16(min(max(v, 0), 65535))
				out[y*g.Stride+2*x], out[y*g.Stride+2*x+1] = byte(p), byte(p>>8)
			default:
				return nil
			}
		}
	}
	return out
}

//go:embed testdata/arvgrab.c
var arvgrabSource []byte

// PlainAravisClient builds arvgrab (testdata/arvgrab.c), a plain Aravis
// client written without framering, with AddressSanitizer and UBSan, and
// returns its path. Run as
//
//	arvgrab CAMERA N DIR "Feature=Value ..."
//
// it sets the features with Aravis's own parser, writes N complete frames
// to DIR/<block id>.raw and prints "WIDTH HEIGHT PIXELFORMAT".
func PlainAravisClient(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, "arvgrab.c")
	if err := os.WriteFile(src, arvgrabSource, 0o644); err != nil {
		t.Fatal(err)
	}
	flags, err := exec.Command("pkg-config", "--cflags", "--libs", "aravis-0.8").Output()
	if err != nil {
		t.Fatalf("pkg-config aravis-0.8: %v", err)
	}
	bin := filepath.Join(dir, "arvgrab")
	args := append([]string{"-std=c11", "-Wall", "-Wextra", "-Werror", "-g", "-fsanitize=address,undefined",
		"-fno-sanitize-recover=undefined", "-o", bin, src}, strings.Fields(string(flags))...)
	if out, err := exec.Command("gcc", args...).CombinedOutput(); err != nil {
		t.Fatalf("build arvgrab: %v\n%s", err, out)
	}
	return bin
}

// RunPlainAravisClient runs the client built by PlainAravisClient (bin) on
// camera for n frames with settings ("Feature=Value" each) and returns the
// frames by block id and what it printed. GLib's process-wide allocations
// are not leaks: LeakSanitizer is off, the rest of ASan on.
func RunPlainAravisClient(t testing.TB, bin, camera string, n int, settings []string) (map[uint64][]byte, string) {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command(bin, camera, strconv.Itoa(n), dir, strings.Join(settings, " "))
	cmd.Env = append(os.Environ(), "ASAN_OPTIONS=detect_leaks=0")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("arvgrab: %v\n%s", err, stderr.String())
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	frames := map[uint64][]byte{}
	for _, e := range ents {
		id, err := strconv.ParseUint(strings.TrimSuffix(e.Name(), ".raw"), 10, 64)
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		frames[id] = b
	}
	return frames, strings.TrimSpace(string(out))
}
