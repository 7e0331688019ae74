package main_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/framering/framering/ringstat"
)

// TestReportsAgree: a line that loses frames for several causes (the
// synthetic source's faults), with a lossless archiver and a lossless
// analyzer, real processes. While the producer is frozen, ringctl's view
// (ringstat, as ringctl show -json) counts exactly the frames the archive
// holds; at the end the producer's summary, the archiver's summary, the
// analyzer's summary (the ring's drop table) and archiver verify agree on
// every count: frames published = received = analyzed = stored, and the
// drops by cause = the losses by cause = the archive's gap records by cause.
func TestReportsAgree(t *testing.T) {
	tmp := t.TempDir()
	sock, dir, anOut := filepath.Join(tmp, "ring.sock"), filepath.Join(tmp, "a"), filepath.Join(tmp, "an.jsonl")
	a := startArchiver(t, "-socket", sock, "-dir", dir, "-stats-interval", "0")
	var prodOut bytes.Buffer
	prod := exec.Command(producerBin, "-socket", sock, "-source", "synthetic", "-width", "64", "-height", "32", "-fps", "500",
		"-slots", "16", "-faults", "incomplete:7,timeout:11,replay_gap:13", "-stats-interval", "0", "-json",
		"-wait-consumers", "2") // both see the first frame

	prod.Stdout = &prodOut
	if err := prod.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prod.Process.Signal(syscall.SIGCONT); prod.Process.Kill(); prod.Wait() })
	an := startCmd(t, "analyzer.log", analyzerBin, "-socket", sock, "-name", "an", "-lossless", "-out", anOut)
	a.waitLine("attached")
	waitFor(t, "400 frames archived", func() bool { return archivedFrames(t, dir) >= 400 })

	// Frozen: what ringctl shows is what the archive holds.
	prod.Process.Signal(syscall.SIGSTOP)
	var rep *ringstat.Report
	waitFor(t, "the archiver caught up with the frozen producer", func() bool {
		r, err := ringstat.Show(context.Background(), ringstat.Target{Socket: sock}, 0)
		rep = r
		return err == nil && uint64(archivedFrames(t, dir)) == r.Producer.Published
	})
	if rep.Drops.Total == 0 {
		t.Fatalf("ringctl shows no drops: %+v", rep.Drops)
	}
	prod.Process.Signal(syscall.SIGCONT)
	prod.Process.Signal(syscall.SIGTERM)
	if err := prod.Wait(); err != nil {
		t.Fatalf("producer: %v", err)
	}
	a.waitLine("the ring ended")
	sum := a.stop(syscall.SIGTERM)
	an.Process.Signal(syscall.SIGTERM)
	an.Wait()

	var ps struct {
		Published uint64            `json:"published"`
		Drops     map[string]uint64 `json:"drops"`
	}
	if err := json.Unmarshal(prodOut.Bytes(), &ps); err != nil {
		t.Fatalf("producer summary %q: %v", prodOut.String(), err)
	}
	var as struct {
		Summary struct {
			Frames    uint64            `json:"frames"`
			RingDrops map[string]uint64 `json:"ring_drops"`
		} `json:"summary"`
	}
	f, err := os.Open(anOut)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if bytes.HasPrefix(sc.Bytes(), []byte(`{"summary"`)) {
			json.Unmarshal(sc.Bytes(), &as)
		}
	}
	out, code := runCmd(t, "verify", "-dir", dir, "-json")
	if code != 0 {
		t.Fatalf("verify: %d\n%s", code, out)
	}
	var vr struct {
		Frames uint64            `json:"frames"`
		LostBy map[string]uint64 `json:"lost_by_cause"`
	}
	if err := json.Unmarshal([]byte(out), &vr); err != nil {
		t.Fatalf("verify -json: %v\n%s", err, out)
	}
	arch := map[string]uint64{}
	for k := range sum["lost"].(map[string]any) {
		arch[k] = num(t, sum, "lost."+k)
	}
	t.Logf("published: producer %d, archiver received %d, analyzer %d, archive %d; drops: producer %v, analyzer %v, archiver %v, archive %v; ringctl while frozen: published %d, drops %v",
		ps.Published, num(t, sum, "received"), as.Summary.Frames, vr.Frames, ps.Drops, as.Summary.RingDrops, arch, vr.LostBy,
		rep.Producer.Published, rep.Drops.ByCause)
	if num(t, sum, "received") != ps.Published || as.Summary.Frames != ps.Published || vr.Frames != ps.Published {
		t.Fatal("frame counts disagree")
	}
	for _, m := range []map[string]uint64{as.Summary.RingDrops, arch, vr.LostBy} {
		if !sameCounts(m, ps.Drops) {
			t.Fatal("drop counts disagree")
		}
	}
	for c, n := range rep.Drops.ByCause {
		if n > ps.Drops[c] {
			t.Fatalf("ringctl showed %d %s drops, more than the producer's final %d", n, c, ps.Drops[c])
		}
	}
	if num(t, sum, "unexplained_id_gaps") != 0 {
		t.Fatalf("archiver summary: %v", sum)
	}
}

// sameCounts compares counts by cause, a zero the same as a missing cause.
func sameCounts(a, b map[string]uint64) bool {
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	for k, v := range b {
		if a[k] != v {
			return false
		}
	}
	return true
}
