package framesrc_test

import (
	"fmt"
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
	// transitLoss: the most frames lost between the hosts tolerated, in
	// percent of those sent (UDP on the veth pair loses none; SRT's live
	// mode drops packets later than its latency on a loaded machine).
	transitLoss int
	send        string
	receive     string
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
		name: "srt-BayerRG8", port: 7001, format: frame.BayerRG8, transitLoss: 25,
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
	arch := filepath.Join(t.TempDir(), "archive")

	recv := start(t, b, nil, filepath.Join(tools.bin, "producer"), "-ring", ringB, "-source", "gst", "-pipeline",
		tc.receive, "-stats-interval", "0", "-exit-watch=false", "-json")
	// Host A sends only once host B listens.
	waitBound(t, b, tc.port)
	prodA := producer(t, nil, ringA, "-format", tc.format.String(), "-width", "64", "-height", "48", "-fps", "100")

	args := []string{"-v", "-e", "framesrc", "ring=" + ringA, "lossless=true"}
	if tc.drop > 0 {
		args = append(args, "!", "identity", fmt.Sprintf("drop-probability=%g", tc.drop))
	}
	// "sent" shows what leaves host A: one last-message line a buffer,
	// with its ring sequence number (offset).
	args = append(args, "!", "identity", "name=sent", "silent=false", "!")
	args = append(args, strings.Fields(tc.send)...)
	g := gst(t, nil, args...)

	// B's ring exists once the first frame's caps arrived; its archiver
	// takes the frames from its attach on.
	from := 0
	recv.waitContains(t, "receiver ready", &from, `msg="producer ready"`)
	ar := start(t, b, nil, filepath.Join(tools.bin, "archiver"), "run", "-ring", ringB, "-dir", arch,
		"-fsync", "never", "-stats-interval", "0", "-reattach=false")
	afrom := 0
	ar.waitContains(t, "archiver attached", &afrom, "attached")
	waitRing(t, b, ringB, fmt.Sprintf("%d frames on host B", n), func(v ringView) bool {
		return v.Producer.Published >= n
	})

	// Stop A, then B (over SRT, the caller's disconnect may have ended
	// B's producer already), then the archiver (the ring closed).
	g.signal(t, syscall.SIGINT)
	if code := finishGst(t, g); code != 0 {
		t.Fatalf("host A gst-launch-1.0 exited %d:\n%s", code, g.text())
	}
	recv.cmd.Process.Signal(syscall.SIGTERM)
	if code := recv.wait(t); code != 0 {
		t.Fatalf("host B's producer exited %d:\n%s", code, recv.text())
	}
	if code := ar.wait(t); code != 0 {
		t.Fatalf("archiver exited %d:\n%s", code, ar.text())
	}
	stopProducer(t, prodA)
	st := lastStats(t, g)
	if st["lost"] != 0 {
		t.Fatalf("lossless framesrc lost frames: %v", st)
	}

	sent := sentSeqs(g)
	ids := readBridged(t, tc, arch)
	if len(ids) == 0 {
		t.Fatal("host B archived nothing")
	}
	// The synthetic source numbers frames from 0, the ring from 1.
	inRange, missing := 0, 0
	for _, id := range ids {
		if !sent[id+1] {
			t.Fatalf("host B has frame %d, which host A did not send (dropped on purpose, or never made)", id)
		}
	}
	got := map[uint64]bool{}
	for _, id := range ids {
		got[id+1] = true
	}
	for seq := range sent {
		if seq >= ids[0]+1 && seq <= ids[len(ids)-1]+1 {
			inRange++
			if !got[seq] {
				missing++
			}
		}
	}
	dropped := st["pushed"] - uint64(len(sent))
	if tc.drop > 0 && dropped == 0 {
		t.Fatalf("nothing dropped on purpose: framesrc pushed %d, host A sent %d", st["pushed"], len(sent))
	}
	if missing > tc.transitLoss*inRange/100 {
		t.Fatalf("%d of the %d frames host A sent between B's first and last archived frame are missing on B", missing, inRange)
	}
	t.Logf("%s: framesrc pushed %d, %d not sent (dropped on purpose, or in flight at the stop), %d sent; host B archived %d byte-identical, "+
		"%d of those sent in its range lost in transit", tc.name, st["pushed"], dropped, len(sent), len(ids), missing)
}

// sentSeqs returns the ring sequence numbers of the frames that left
// host A (identity name=sent's last-message lines).
func sentSeqs(g *proc) map[uint64]bool {
	seqs := map[uint64]bool{}
	for _, l := range strings.Split(g.text(), "\n") {
		if m := sentLine.FindStringSubmatch(l); m != nil {
			seq, _ := strconv.ParseUint(m[1], 10, 64)
			seqs[seq] = true
		}
	}
	return seqs
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

var sentLine = regexp.MustCompile(`GstIdentity:sent: last-message = chain .*offset: (\d+),`)

// readBridged checks every frame host B archived: the geometry, and the
// bytes against the pattern stamp host A's producer wrote (checksum,
// format); frame ids increase. It returns the ids in order.
func readBridged(t *testing.T, tc bridgeCase, arch string) []uint64 {
	t.Helper()
	var ids []uint64
	eachArchived(t, arch, func(m archive.Meta, payload []byte) {
		if m.Width != 64 || m.Height != 48 {
			t.Fatalf("frame %d: %dx%d on host B", m.FrameID, m.Width, m.Height)
		}
		s, err := frame.Verify(payload)
		if err != nil {
			t.Fatalf("frame %d on host B is not what host A's producer wrote: %v", len(ids), err)
		}
		if s.Format != tc.format {
			t.Fatalf("frame %d: stamp format %v, want %v", s.FrameID, s.Format, tc.format)
		}
		if len(ids) > 0 && s.FrameID <= ids[len(ids)-1] {
			t.Fatalf("frame id %d after %d", s.FrameID, ids[len(ids)-1])
		}
		ids = append(ids, s.FrameID)
	})
	return ids
}
