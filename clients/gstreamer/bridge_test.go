package framesrc_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/framering/framering/archive"
	"github.com/framering/framering/frame"
	"github.com/framering/framering/internal/testmain"
)

// The two hosts' addresses, on the veth pair the test makes between two
// network namespaces of its own (never any other network).
const (
	bridgeA = "10.231.0.1"
	bridgeB = "10.231.0.2"
)

// hostB makes host B: a network namespace held by a sleeping process,
// joined to this test's own namespace (host A, made by
// testmain.PrivateNetwork) by a veth pair. It returns the prefix that runs
// a command on host B.
func hostB(t *testing.T) []string {
	t.Helper()
	holder := exec.Command("unshare", "--net", "--", "sleep", "3600")
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { holder.Process.Kill(); holder.Wait() })
	ns := fmt.Sprintf("/proc/%d/ns/net", holder.Process.Pid)
	own, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(hangGuard)
	for {
		if l, err := os.Readlink(ns); err == nil && l != own {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("unshare --net: no namespace of its own")
		}
		time.Sleep(5 * time.Millisecond)
	}
	prefix := []string{"nsenter", "--net=" + ns, "--"}
	for _, c := range [][]string{
		{"ip", "link", "add", "fra", "type", "veth", "peer", "name", "frb"},
		{"ip", "link", "set", "frb", "netns", fmt.Sprint(holder.Process.Pid)},
		{"ip", "addr", "add", bridgeA + "/24", "dev", "fra"},
		{"ip", "link", "set", "fra", "up"},
		append(append([]string{}, prefix...), "ip", "addr", "add", bridgeB+"/24", "dev", "frb"),
		append(append([]string{}, prefix...), "ip", "link", "set", "frb", "up"),
		append(append([]string{}, prefix...), "ip", "link", "set", "lo", "up"),
	} {
		if out, err := execOut(c[0], c[1:]...); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(c, " "), err, out)
		}
	}
	return prefix
}

// bridgeCase is one transport between the hosts. send is host A's
// pipeline after framesrc (ending in the sink towards B); receive is host
// B's `producer -source gst -pipeline` description.
type bridgeCase struct {
	name   string
	port   int // host B's UDP port
	format frame.Format
	drop   float64 // identity drop-probability on host A: losses injected
	// open: host A's caller closes the connection at its end of stream,
	// and what B's receiver still buffers (SRT's latency) is lost: host A
	// streams until B has n frames instead, then stops.
	open    bool
	send    string
	receive string
}

var rtpGstCaps = `application/x-rtp,media=(string)application,clock-rate=(int)90000,encoding-name=(string)X-GST`

var bridgeCases = []bridgeCase{
	{
		// RTP over UDP; rtpgstpay carries any caps (GRAY16_LE here, which
		// rtpvrawpay cannot) and its bytes unchanged.
		name: "rtp-udp-Mono12", port: 5600, format: frame.Mono12, drop: 0.2,
		send:    "rtpgstpay config-interval=1 mtu=1400 ! udpsink host=" + bridgeB + " port=5600 sync=false",
		receive: `udpsrc address=` + bridgeB + ` port=5600 caps="` + rtpGstCaps + `" ! rtpgstdepay`,
	},
	{
		// SRT, Bayer; 1316-byte RTP packets
		// fit one SRT live-mode message each.
		name: "srt-BayerRG8", port: 7001, format: frame.BayerRG8, open: true,
		send:    "rtpgstpay config-interval=1 mtu=1316 ! srtsink uri=srt://" + bridgeB + ":7001 mode=caller latency=200 wait-for-connection=true sync=false",
		receive: `srtsrc uri=srt://:7001 mode=listener latency=200 ! ` + rtpGstCaps + ` ! rtpgstdepay`,
	},
}

// TestBridge: frames cross from host A to host B through GStreamer's own
// network transports: producer -> ring -> framesrc ! payloader ! sink on A,
// source ! depayloader -> producer -source gst -> ring -> archiver on B.
// Every frame archived on B is byte-identical to what A's producer wrote
// (its pattern stamp's checksum and frame id), frames arrive in order,
// and the frames lost on the way are exactly the ones dropped on purpose.
func TestBridge(t *testing.T) {
	if !testmain.PrivateNetwork(t) {
		return
	}
	setup(t)
	b := hostB(t)
	for _, tc := range bridgeCases {
		t.Run(tc.name, func(t *testing.T) { bridge(t, b, tc) })
	}
}

func bridge(t *testing.T, b []string, tc bridgeCase) {
	const n = 60
	ringA, ringB := ringName(t)+"-a", ringName(t)+"-b"
	dir := t.TempDir()

	recv := start(t, b, nil, filepath.Join(tools.bin, "producer"), "-ring", ringB, "-source", "gst", "-pipeline",
		tc.receive, "-stats-interval", "0", "-exit-watch=false", "-json")
	// Host A sends only once host B listens: nothing is lost before.
	waitBound(t, b, tc.port)
	arch := filepath.Join(dir, "archive")
	var ar *proc
	prodA := producer(t, nil, ringA, "-format", tc.format.String(), "-width", "64", "-height", "48", "-fps", "100")

	args := []string{"-e", "framesrc", "ring=" + ringA, "lossless=true"}
	if !tc.open {
		args = append(args, fmt.Sprintf("num-buffers=%d", n))
	}
	if tc.drop > 0 {
		args = append(args, "!", "identity", fmt.Sprintf("drop-probability=%g", tc.drop))
	}
	// "sent" counts what leaves host A: one last-message line a buffer.
	args = append(args, "!", "identity", "name=sent", "silent=false", "!")
	args = append(args, strings.Fields(tc.send)...)
	g := gst(t, nil, append([]string{"-v"}, args...)...)

	// B's producer is ready once the first frame's caps arrived.
	from := 0
	recv.waitContains(t, "receiver ready", &from, `msg="producer ready"`)
	ar = start(t, b, nil, filepath.Join(tools.bin, "archiver"), "run", "-ring", ringB, "-dir", arch,
		"-fsync", "never", "-stats-interval", "0", "-reattach=false")
	afrom := 0
	ar.waitContains(t, "archiver attached", &afrom, "attached")

	if tc.open {
		waitRing(t, b, ringB, fmt.Sprintf("%d frames on host B", n), func(v ringView) bool {
			return v.Producer.Published >= n
		})
		g.signal(t, syscall.SIGINT)
	}
	if code := finishGst(t, g); code != 0 {
		t.Fatalf("host A gst-launch-1.0 exited %d:\n%s", code, g.text())
	}
	sent := strings.Count(g.text(), "GstIdentity:sent: last-message = chain")
	if tc.open {
		bridgeOpen(t, tc, recv, arch, sent)
		stopProducer(t, prodA)
		return
	}
	if sent == 0 || sent > n || (tc.drop > 0) != (sent < n) {
		t.Fatalf("host A sent %d of %d frames (drop-probability %g)", sent, n, tc.drop)
	}
	// The newest frame stays in B's receiving pipeline until another
	// arrives or the producer stops (known: README). Over SRT, the
	// caller's disconnect at A's end of stream ends B's producer.
	deadline := time.Now().Add(hangGuard)
	for {
		if recv.exited() {
			break
		}
		argv := append(append([]string{}, b...), filepath.Join(tools.bin, "ringctl"), "show", "-ring", ringB, "-json")
		out, err := execOut(argv[0], argv[1:]...)
		var v ringView
		if err == nil && json.Unmarshal(out, &v) == nil && v.Producer.Published >= uint64(sent-1) {
			stopProducer(t, recv)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("host B: not %d frames within %v: %s", sent-1, hangGuard, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code := recv.wait(t); code != 0 {
		t.Fatalf("host B's producer exited %d:\n%s", code, recv.text())
	}
	if sum := summary(t, recv); sum.Published != uint64(sent) && sum.Published != uint64(sent-1) {
		t.Fatalf("host B's producer published %d frames, host A sent %d", sum.Published, sent)
	}
	if code := ar.wait(t); code != 0 {
		t.Fatalf("archiver exited %d:\n%s", code, ar.text())
	}
	stopProducer(t, prodA)
	st := lastStats(t, g)

	got, prev, gaps := readBridged(t, tc, arch)
	// The archiver attached after B's ring existed, which its first
	// frame made: it has the frames from then on.
	if last := lastID(t, g); got == 0 || got > sent || prev > last || prev+1 < last {
		t.Fatalf("host B archived %d frames (the last id %d), host A sent %d", got, prev, sent)
	}
	// framesrc was lossless: every gap on B is a frame dropped on A (or
	// dropped before the first or after the last one B saw).
	if lost := uint64(n - sent); gaps > lost || st["lost"] != 0 || st["pushed"] != n {
		t.Fatalf("gaps %d on host B, %d dropped on host A; framesrc stats %v", gaps, lost, st)
	}
	t.Logf("%s: %d frames pushed by framesrc, %d dropped on purpose, %d received byte-identical", tc.name, n, n-sent, got)
}

// waitBound waits until a UDP socket on host B is bound to port.
func waitBound(t *testing.T, b []string, port int) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	argv := append(append([]string{}, b...), "ss", "-Huan", fmt.Sprintf("sport = :%d", port))
	for {
		out, err := execOut(argv[0], argv[1:]...)
		if err != nil {
			t.Fatalf("ss: %v\n%s", err, out)
		}
		if strings.TrimSpace(string(out)) != "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on host B's UDP port %d within %v", port, hangGuard)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// lastID is the frame id of the last frame host A sent: identity's
// last-message shows its ring sequence number (offset), and the synthetic
// source's frame ids are its sequence numbers.
func lastID(t *testing.T, g *proc) uint64 {
	t.Helper()
	var id uint64
	for _, l := range strings.Split(g.text(), "\n") {
		if m := sentLine.FindStringSubmatch(l); m != nil {
			id, _ = strconv.ParseUint(m[1], 10, 64)
		}
	}
	return id
}

var sentLine = regexp.MustCompile(`GstIdentity:sent: last-message = chain .*offset: (\d+),`)

// readBridged checks every frame host B archived: the geometry, and the
// bytes against the pattern stamp host A's producer wrote (checksum,
// format); frame ids increase. It returns the count, the last id and the
// ids missing between the first and the last.
func readBridged(t *testing.T, tc bridgeCase, arch string) (got int, prev, gaps uint64) {
	t.Helper()
	r, err := archive.OpenReader(arch)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if rec.Kind != archive.KindFrame {
			continue
		}
		if rec.Meta.Width != 64 || rec.Meta.Height != 48 {
			t.Fatalf("frame %d: %dx%d on host B", rec.Meta.FrameID, rec.Meta.Width, rec.Meta.Height)
		}
		s, err := frame.Verify(rec.Payload)
		if err != nil {
			t.Fatalf("frame %d on host B is not what host A's producer wrote: %v", got, err)
		}
		if s.Format != tc.format {
			t.Fatalf("frame %d: stamp format %v, want %v", s.FrameID, s.Format, tc.format)
		}
		if got > 0 {
			if s.FrameID <= prev {
				t.Fatalf("frame id %d after %d", s.FrameID, prev)
			}
			gaps += s.FrameID - prev - 1
		}
		prev = s.FrameID
		got++
	}
	return got, prev, gaps
}

// bridgeOpen checks a stream host A stopped while it ran: host B
// archived nothing host A did not send, and counts what went missing.
func bridgeOpen(t *testing.T, tc bridgeCase, recv *proc, arch string, sent int) {
	t.Helper()
	// The caller's disconnect may have ended B's producer already.
	recv.cmd.Process.Signal(syscall.SIGTERM)
	if code := recv.wait(t); code != 0 {
		t.Fatalf("host B's producer exited %d:\n%s", code, recv.text())
	}
	sum := summary(t, recv)
	got, _, gaps := readBridged(t, tc, arch)
	// SRT's live mode drops packets later than its latency (too-late
	// packet drop): a frame missing a packet never reaches B's ring. The
	// missing ones are counted, never replaced by anything else.
	if got == 0 || uint64(got) > sum.Published || sum.Published > uint64(sent) || uint64(got)+gaps > uint64(sent) {
		t.Fatalf("host A sent %d, host B published %d and archived %d with %d missing", sent, sum.Published, got, gaps)
	}
	t.Logf("%s: %d frames sent, %d received, %d archived byte-identical, %d missing between them", tc.name, sent,
		sum.Published, got, gaps)
}
