package framesrc_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
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
	"github.com/framering/framering/ringbuf"
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

// bridgeCase is one transport between the hosts. pay and sink make host
// A's pipeline after framesrc (the sink towards B); receive is host B's
// `producer -source gst -pipeline` description.
type bridgeCase struct {
	name   string
	port   int // host B's UDP port
	format frame.Format
	// drop: identity drop-probability before the payloader on host A:
	// frames never sent (host B cannot see them missing).
	drop float64
	// packetDrop: identity drop-probability after the payloader: RTP
	// packets lost on the way, each one counted (name=lose, silent=false).
	packetDrop float64
	// transitLoss: the most frames lost between the hosts tolerated, in
	// percent of those sent, where the test cannot tell which (SRT's live
	// mode drops packets later than its latency on a loaded machine);
	// -1: exactly the frames that lost a packet on purpose.
	transitLoss int
	pay, sink   string
	receive     string
}

var rtpGstCaps = `application/x-rtp,media=(string)application,clock-rate=(int)90000,encoding-name=(string)X-GST`

var bridgeCases = []bridgeCase{
	{
		// RTP over UDP; rtpgstpay carries any caps (GRAY16_LE here, which
		// rtpvrawpay cannot) and its bytes unchanged.
		name: "rtp-udp-Mono12", port: 5600, format: frame.Mono12, drop: 0.2, transitLoss: -1,
		pay:     "rtpgstpay config-interval=1 mtu=1400",
		sink:    "udpsink host=" + bridgeB + " port=5600 sync=false",
		receive: `udpsrc address=` + bridgeB + ` port=5600 caps="` + rtpGstCaps + `" ! rtpgstdepay`,
	},
	{
		// Packets, not frames, lost on the way: 5 RTP packets a frame,
		// some dropped. rtpgstdepay drops every frame that lost one.
		name: "rtp-udp-packet-loss-Mono16", port: 5601, format: frame.Mono16, packetDrop: 0.04, transitLoss: -1,
		pay:     "rtpgstpay config-interval=1 mtu=1400",
		sink:    "udpsink host=" + bridgeB + " port=5601 sync=false",
		receive: `udpsrc address=` + bridgeB + ` port=5601 caps="` + rtpGstCaps + `" ! rtpgstdepay`,
	},
	{
		// SRT, Bayer; 1316-byte RTP packets
		// fit one SRT live-mode message each.
		name: "srt-BayerRG8", port: 7001, format: frame.BayerRG8, transitLoss: 25,
		pay:     "rtpgstpay config-interval=1 mtu=1316",
		sink:    "srtsink uri=srt://" + bridgeB + ":7001 mode=caller latency=200 wait-for-connection=true sync=false",
		receive: `srtsrc uri=srt://:7001 mode=listener latency=200 ! ` + rtpGstCaps + ` ! rtpgstdepay`,
	},
}

// TestBridge: frames cross from host A to host B through GStreamer's own
// network transports: producer -> ring -> framesrc ! payloader ! sink on A,
// source ! depayloader -> producer -source gst -> ring -> archiver on B.
// Every frame archived on B is byte-identical to what A's producer wrote
// (its pattern stamp's checksum and frame id), frames arrive in order,
// and the frames lost on the way are exactly the ones dropped on purpose
// (UDP) or few (SRT), each gap counted by host B. When host A pauses (its
// producer stops, the stream stays open), host B's newest frame is the
// last one A sent: B keeps no frame back. Host B, listening before A
// sends, gets every frame A sent (UDP: its producer's frame count is the
// number A sent, minus the frames lost whole in packets on purpose).
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

	// eos-on-close=false: when A's producer stops, framesrc sends what is
	// left in the ring and waits for the next producer, the stream open.
	args := []string{"-v", "-e", "framesrc", "ring=" + ringA, "lossless=true", "eos-on-close=false"}
	if tc.drop > 0 {
		args = append(args, "!", "identity", fmt.Sprintf("drop-probability=%g", tc.drop))
	}
	// "sent" shows what leaves host A: one last-message line a buffer,
	// with its ring sequence number (offset).
	args = append(args, "!", "identity", "name=sent", "silent=false", "!")
	args = append(args, strings.Fields(tc.pay)...)
	if tc.packetDrop > 0 {
		args = append(args, "!", "identity", "name=lose", "silent=false", fmt.Sprintf("drop-probability=%g", tc.packetDrop))
	}
	args = append(args, "!")
	args = append(args, strings.Fields(tc.sink)...)
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

	// Pause: A's producer stops; once framesrc has sent the rest of its
	// ring, the last frame that left A must become B's newest.
	stopProducer(t, prodA)
	gfrom := 0
	g.waitContains(t, "framesrc waiting for the next producer", &gfrom, "waiting for its next producer")
	sent := sentFrames(g)
	lost := lostFrames(g)
	first, last := uint64(0), uint64(0)
	for seq := range sent {
		if first == 0 || seq < first {
			first = seq
		}
	}
	// The stream-start event's packet carries the first frame's PTS: its
	// loss does not say whether the first frame lost one.
	delete(lost, sent[first].pts)
	for seq, f := range sent {
		if seq > last && !lost[f.pts] {
			last = seq
		}
	}
	if tc.transitLoss < 0 {
		waitNewest(t, ringB, last-1)
	} else if !waitNewestOrLost(t, ringB, last-1) {
		t.Logf("%s: host A's last frame %d did not reach host B (lost in transit)", tc.name, last-1)
	}

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
	st := lastStats(t, g)
	if st["lost"] != 0 {
		t.Fatalf("lossless framesrc lost frames: %v", st)
	}
	sumB := summary(t, recv)

	recs := readBridged(t, tc, arch)
	if len(recs) == 0 {
		t.Fatal("host B archived nothing")
	}
	// The synthetic source numbers frames from 0, the ring from 1.
	for _, r := range recs {
		f, ok := sent[r.stamp+1]
		if !ok {
			t.Fatalf("host B has frame %d, which host A did not send (dropped on purpose, or never made)", r.stamp)
		}
		if lost[f.pts] {
			t.Fatalf("host B has frame %d, which lost a packet on the way", r.stamp)
		}
	}
	got := map[uint64]bool{}
	for _, r := range recs {
		got[r.stamp+1] = true
	}
	inRange, missing, lostWhole := 0, 0, 0
	for seq, f := range sent {
		if seq >= recs[0].stamp+1 && seq <= recs[len(recs)-1].stamp+1 {
			inRange++
			if !got[seq] {
				missing++
			}
			if lost[f.pts] {
				lostWhole++
			}
		}
	}
	dropped := st["pushed"] - uint64(len(sent))
	if tc.drop > 0 && dropped == 0 {
		t.Fatalf("nothing dropped on purpose: framesrc pushed %d, host A sent %d", st["pushed"], len(sent))
	}
	if tc.packetDrop > 0 && lostWhole == 0 {
		t.Fatalf("no frame lost a packet on purpose in host B's range")
	}
	if tc.transitLoss < 0 && missing != lostWhole || tc.transitLoss >= 0 && missing > tc.transitLoss*inRange/100 {
		t.Fatalf("%d of the %d frames host A sent between B's first and last archived frame are missing on B (%d lost a packet on purpose)",
			missing, inRange, lostWhole)
	}
	// Every frame lost on the way shows on host B: a gap in its frame ids
	// (one id for the DISCONT after the loss), counted under a drop cause.
	gaps := 0
	for i := 1; i < len(recs); i++ {
		a, c := recs[i-1], recs[i]
		for seq := a.stamp + 2; seq <= c.stamp; seq++ {
			if _, ok := sent[seq]; ok {
				if c.id == a.id+1 {
					t.Fatalf("host A sent frame %d, missing on host B between %d and %d, whose frame ids %d, %d show no gap",
						seq-1, a.stamp, c.stamp, a.id, c.id)
				}
				gaps++
				break
			}
		}
	}
	// Under some cause: a frame can also be dropped on B itself (an
	// underrun: no buffer free when it arrived, seen over SRT on a loaded
	// machine); a lost packet is an incomplete frame.
	if uint64(gaps) > sumB.Dropped || tc.packetDrop > 0 && missing > 0 && sumB.Drops["incomplete"] == 0 {
		t.Fatalf("%d gaps on host B (%d frames lost on the way), its drops: %v", gaps, missing, sumB.Drops)
	}
	// Over UDP without lost packets, host B (listening before A sent its
	// first frame, on a lossless link) saw every frame A sent: none lost
	// while its ring was being made, none kept back.
	if tc.transitLoss < 0 && tc.packetDrop == 0 && (sumB.Frames != uint64(len(sent)) || sumB.Drops["incomplete"] != 0) {
		t.Fatalf("host A sent %d frames, host B's producer saw %d (%d discontinuities): %+v",
			len(sent), sumB.Frames, sumB.Drops["incomplete"], sumB)
	}
	t.Logf("%s: framesrc pushed %d, %d not sent (dropped on purpose, or in flight at the stop), %d sent; host B archived %d byte-identical, "+
		"%d of those sent in its range lost in transit (%d lost a packet on purpose), %d gaps, host B: %+v",
		tc.name, st["pushed"], dropped, len(sent), len(recs), missing, lostWhole, gaps, sumB)
}

// waitNewest waits until the newest frame in ring (host B's) is the one
// host A's producer numbered id, and fails if B never gets it.
func waitNewest(t *testing.T, ring string, id uint64) {
	t.Helper()
	if !waitNewestOrLost(t, ring, id) {
		t.Fatalf("host A's last frame %d never became host B's newest within %v: host B keeps it back", id, hangGuard)
	}
}

// waitNewestOrLost waits until the newest frame in ring is the one host
// A's producer numbered id (true), or up to hangGuard (false). It
// attaches as an observer (no table entry, no holds) and reads the newest
// frame's pattern stamp; a frame that does not verify fails the test.
func waitNewestOrLost(t *testing.T, ring string, id uint64) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	r, err := ringbuf.Attach(ctx, ringbuf.Options{Name: ring, Role: ringbuf.RoleObserver,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("observe ring %s: %v", ring, err)
	}
	defer r.Close()
	var buf []byte
	newest := uint64(0)
	for ctx.Err() == nil {
		if seq := r.Published(); seq > 0 {
			var err error
			if _, buf, err = r.ReadCopy(seq, buf); err == nil {
				s, err := frame.Verify(buf)
				if err != nil {
					t.Fatalf("host B's frame %d is not what host A's producer wrote: %v", seq, err)
				}
				if s.FrameID == id {
					return true
				}
				newest = s.FrameID
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("host B's newest frame: %d, waiting for %d", newest, id)
	return false
}

// sentFrame is one buffer that left host A: its PTS as identity prints it.
type sentFrame struct{ pts string }

// sentFrames returns the frames that left host A (identity name=sent's
// last-message lines) by ring sequence number (the buffer offset).
func sentFrames(g *proc) map[uint64]sentFrame {
	seqs := map[uint64]sentFrame{}
	for _, l := range strings.Split(g.text(), "\n") {
		if m := sentLine.FindStringSubmatch(l); m != nil {
			seq, _ := strconv.ParseUint(m[2], 10, 64)
			seqs[seq] = sentFrame{pts: m[1]}
		}
	}
	return seqs
}

// lostFrames returns the PTS of the frames that lost an RTP packet on
// purpose (identity name=lose's "dropping" lines: a packet carries its
// frame's PTS).
func lostFrames(g *proc) map[string]bool {
	lost := map[string]bool{}
	for _, l := range strings.Split(g.text(), "\n") {
		if m := loseLine.FindStringSubmatch(l); m != nil {
			lost[m[1]] = true
		}
	}
	return lost
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

var (
	sentLine = regexp.MustCompile(`GstIdentity:sent: last-message = chain .*pts: ([0-9:.]+),.*offset: (\d+),`)
	loseLine = regexp.MustCompile(`GstIdentity:lose: last-message = dropping .*pts: ([0-9:.]+),`)
)

// bridged is a frame host B archived: its pattern stamp's frame id (host
// A's producer's) and host B's own frame id.
type bridged struct{ stamp, id uint64 }

// readBridged checks every frame host B archived: the geometry, and the
// bytes against the pattern stamp host A's producer wrote (checksum,
// format); both frame ids increase. It returns the frames in order.
func readBridged(t *testing.T, tc bridgeCase, arch string) []bridged {
	t.Helper()
	var recs []bridged
	eachArchived(t, arch, func(m archive.Meta, payload []byte) {
		if m.Width != 64 || m.Height != 48 {
			t.Fatalf("frame %d: %dx%d on host B", m.FrameID, m.Width, m.Height)
		}
		s, err := frame.Verify(payload)
		if err != nil {
			t.Fatalf("frame %d on host B is not what host A's producer wrote: %v", m.FrameID, err)
		}
		if s.Format != tc.format {
			t.Fatalf("frame %d: stamp format %v, want %v", s.FrameID, s.Format, tc.format)
		}
		if n := len(recs); n > 0 && (s.FrameID <= recs[n-1].stamp || m.FrameID <= recs[n-1].id) {
			t.Fatalf("frame %d (host B's %d) after %d (%d)", s.FrameID, m.FrameID, recs[n-1].stamp, recs[n-1].id)
		}
		recs = append(recs, bridged{stamp: s.FrameID, id: m.FrameID})
	})
	return recs
}
