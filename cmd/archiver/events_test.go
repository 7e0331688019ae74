package main_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/framering/framering/archive"
	"github.com/framering/framering/frame"
	"github.com/framering/framering/results"
)

// listedEvent is a line of "archiver events -json".
type listedEvent struct {
	ID          uint64 `json:"id"`
	Epoch       string `json:"epoch"`
	FirstSeq    uint64 `json:"first_seq"`
	LastSeq     uint64 `json:"last_seq"`
	Frames      uint64 `json:"frames"`
	Missing     uint64 `json:"missing"`
	FirstRecord uint64 `json:"first_record"`
	LastRecord  uint64 `json:"last_record"`
	Complete    bool   `json:"complete"`
	After       uint64 `json:"after"`
	Status      string `json:"status"`
	Triggers    []struct {
		Source      string          `json:"source"`
		Epoch       string          `json:"epoch"`
		Seq         uint64          `json:"seq"`
		Label       string          `json:"label"`
		DefectCount int             `json:"defect_count"`
		Result      json.RawMessage `json:"result"`
	} `json:"triggers"`
	TriggerCount uint64 `json:"trigger_count"`
}

func listEvents(t *testing.T, dir string) []listedEvent {
	t.Helper()
	out, code := runCmd(t, "events", "-dir", dir, "-json")
	if code != 0 {
		return nil // not created yet
	}
	var evs []listedEvent
	dec := json.NewDecoder(strings.NewReader(out))
	for {
		var ev listedEvent
		if err := dec.Decode(&ev); errors.Is(err, io.EOF) {
			return evs
		} else if err != nil {
			t.Fatalf("events -json: %v\n%s", err, out)
		}
		evs = append(evs, ev)
	}
}

// startCmd starts a command whose output goes to a file, killed at the
// end of the test.
func startCmd(t *testing.T, logName string, bin string, args ...string) *exec.Cmd {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), logName))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		f.Close()
		if t.Failed() {
			b, _ := os.ReadFile(f.Name())
			t.Logf("%s log:\n%s", logName, b)
		}
	})
	return cmd
}

// TestEventsEndToEnd: producer (sparse defects: frames whose id is a
// multiple of 40) → analyzer -results → archiver -record events -pre 3
// -post 2, real processes. Each event holds exactly the frames from
// trigger - 3 to trigger + 2, byte-identical to the source, the trigger is
// a frame with injected defects, and the event carries the analyzer's
// result for it. An external trigger on the trigger socket records the
// newest published frame the same way; export -event exports an event.
func TestEventsEndToEnd(t *testing.T) {
	tmp := t.TempDir()
	sock := filepath.Join(tmp, "ring.sock")
	dir := filepath.Join(tmp, "events")
	tsock := filepath.Join(tmp, "trigger.sock")
	const every = 40
	g := frame.Geometry{Width: 128, Height: 64, Stride: 128, Format: frame.Mono8}
	prod := startCmd(t, "producer.log", producerBin, "-socket", sock, "-source", "synthetic", "-width", "128", "-height", "64",
		"-fps", "200", "-slots", "16", "-defects", "-defect-every", "40", "-stats-interval", "0")
	an := startCmd(t, "analyzer.log", analyzerBin, "-socket", sock, "-name", "an", "-lossless", "-results", "-out", os.DevNull)
	p := startArchiver(t, "-socket", sock, "-dir", dir, "-record", "events", "-trigger-analyzer", "an", "-pre", "3", "-post", "2",
		"-trigger-socket", tsock, "-fsync", "every=16", "-stats-interval", "0")
	p.waitLine("following the analyzer's results")
	waitFor(t, "3 events", func() bool { return len(listEvents(t, dir)) >= 3 })

	// An external trigger: the newest published frame.
	c, err := net.Dial("unix", tsock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(`{"label":"operator"}` + "\n")); err != nil {
		t.Fatal(err)
	}
	var reply struct {
		Accepted bool   `json:"accepted"`
		Seq      uint64 `json:"seq"`
		Error    string `json:"error"`
	}
	line, err := bufio.NewReader(c).ReadBytes('\n')
	if err != nil || json.Unmarshal(line, &reply) != nil || !reply.Accepted || reply.Seq == 0 {
		t.Fatalf("trigger reply %q: %v", line, err)
	}
	// A bad request is refused with a reason, and the socket goes on.
	c.Write([]byte(`{"seq":5}` + "\n"))
	line, _ = bufio.NewReader(c).ReadBytes('\n')
	if !bytes.Contains(line, []byte(`"error"`)) {
		t.Fatalf("bad trigger accepted: %q", line)
	}
	external := func() *listedEvent {
		for _, ev := range listEvents(t, dir) {
			for _, tr := range ev.Triggers {
				if tr.Source == "external" && tr.Seq == reply.Seq {
					return &ev
				}
			}
		}
		return nil
	}
	waitFor(t, "the external trigger's event", func() bool { return external() != nil })

	for _, cmd := range []*exec.Cmd{prod, an} {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}
	sum := p.stop(syscall.SIGTERM)
	if num(t, sum, "events.events") < 4 {
		t.Fatalf("summary: %v", sum)
	}

	// Every event against the archive.
	r, err := archive.OpenReader(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	byRecord := map[uint64]archive.Record{}
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if rec.Kind != archive.KindFrame {
			t.Fatalf("record %d of kind %v in an events archive", rec.Seq, rec.Kind)
		}
		rec.Payload = append([]byte(nil), rec.Payload...)
		byRecord[rec.Seq] = rec
	}
	evs := listEvents(t, dir)
	sawResults := 0
	for i, ev := range evs {
		if ev.Status != "ok" && ev.Status != "incomplete" {
			t.Fatalf("event %d: status %s", ev.ID, ev.Status)
		}
		// Defects come 40 frames apart, so their windows never touch; the
		// operator's trigger lands wherever the line was, and merges with a
		// defect's event when their windows touch (pre 3 + post 2).
		if uint64(len(ev.Triggers)) != ev.TriggerCount || ev.TriggerCount == 0 || ev.TriggerCount > 2 {
			t.Fatalf("event %d: %d triggers listed, count %d", ev.ID, len(ev.Triggers), ev.TriggerCount)
		}
		tr, last := ev.Triggers[0], ev.Triggers[len(ev.Triggers)-1]
		if ev.TriggerCount == 2 {
			a, b := ev.Triggers[0], ev.Triggers[1]
			if a.Source == b.Source || (a.Source != "external" && b.Source != "external") || b.Seq < a.Seq || b.Seq-a.Seq > 3+2+1 {
				t.Fatalf("event %d: triggers %+v merged (only the operator's may join a defect's, when the windows touch)", ev.ID, ev.Triggers)
			}
		}
		wantFirst := max(tr.Seq, 4) - 3
		if i > 0 && evs[i-1].LastSeq >= wantFirst {
			// Its window reaches into the event before: it starts after it.
			if ev.After != evs[i-1].ID {
				t.Fatalf("event %d overlaps event %d but does not say so", ev.ID, evs[i-1].ID)
			}
			wantFirst = evs[i-1].LastSeq + 1
		}
		if ev.FirstSeq != wantFirst || ev.Complete && ev.LastSeq != last.Seq+2 || ev.Missing != 0 {
			t.Fatalf("event %d: seqs %d..%d (missing %d) for a trigger at %d", ev.ID, ev.FirstSeq, ev.LastSeq, ev.Missing, tr.Seq)
		}
		if ev.Frames != ev.LastSeq-ev.FirstSeq+1 || ev.LastRecord-ev.FirstRecord+1 != ev.Frames {
			t.Fatalf("event %d: %d frames in records %d..%d", ev.ID, ev.Frames, ev.FirstRecord, ev.LastRecord)
		}
		for i := uint64(0); i < ev.Frames; i++ {
			rec, ok := byRecord[ev.FirstRecord+i]
			if !ok || rec.Meta.RingSeq != ev.FirstSeq+i || archive.Epoch(rec.Meta.Epoch).String() != ev.Epoch {
				t.Fatalf("event %d: record %d is %+v", ev.ID, ev.FirstRecord+i, rec.Meta)
			}
			id := rec.Meta.FrameID
			gen, err := frame.NewGenerator(g, id%every == 0)
			if err != nil {
				t.Fatal(err)
			}
			want := make([]byte, g.Size())
			gen.Fill(want, id)
			if !bytes.Equal(rec.Payload, want) {
				t.Fatalf("event %d: frame %d (seq %d) differs from the source's", ev.ID, id, rec.Meta.RingSeq)
			}
			for _, tr := range ev.Triggers {
				if rec.Meta.RingSeq == tr.Seq && tr.Source == "results" {
					if id%every != 0 || len(frame.Defects(nil, g, id)) == 0 {
						t.Fatalf("event %d: triggered by frame %d, which has no injected defects", ev.ID, id)
					}
				}
			}
		}
		for _, tr := range ev.Triggers {
			if tr.Source != "results" {
				continue
			}
			sawResults++
			var res results.Result
			if err := json.Unmarshal(tr.Result, &res); err != nil || res.Seq != tr.Seq || res.DefectCount == 0 ||
				res.DefectCount != tr.DefectCount || res.Epoch.String() != ev.Epoch {
				t.Fatalf("event %d: the analyzer's result %s for trigger %+v", ev.ID, tr.Result, tr)
			}
		}
	}
	if sawResults < 3 {
		t.Fatalf("%d events from the analyzer's results", sawResults)
	}
	ext := external()
	labelled := false
	for _, tr := range ext.Triggers {
		labelled = labelled || tr.Source == "external" && tr.Label == "operator"
	}
	if !labelled {
		t.Fatalf("external event: %+v", ext)
	}

	// export -event, and the text listing.
	out, code := runCmd(t, "export", "-dir", dir, "-event", "2", "-format", "png", "-out", filepath.Join(tmp, "png"))
	if code != 0 {
		t.Fatalf("export -event: %d\n%s", code, out)
	}
	if files, _ := os.ReadDir(filepath.Join(tmp, "png")); uint64(len(files)) != evs[1].Frames {
		t.Fatalf("export -event 2: %d files for %d frames\n%s", len(files), evs[1].Frames, out)
	}
	// The text listing names each event's first trigger: the operator's,
	// unless it joined a defect's event that came first.
	out, code = runCmd(t, "events", "-dir", dir)
	if code != 0 || !strings.Contains(out, "results@") || (ext.Triggers[0].Source == "external" && !strings.Contains(out, `external@`)) {
		t.Fatalf("events: %d\n%s", code, out)
	}
	t.Logf("archiver events:\n%s", out)
	if out, code := runCmd(t, "verify", "-dir", dir); code != 0 {
		t.Fatalf("verify: %d\n%s", code, out)
	}

	// Replay event 2 into a new ring with an archiver and an analyzer on
	// it: the same frames, and the analyzer's verdict on the trigger frame
	// is the one it gave live.
	ev := evs[1]
	sock3, dir3, out3 := filepath.Join(tmp, "replay.sock"), filepath.Join(tmp, "replayed"), filepath.Join(tmp, "replayed.jsonl")
	a3 := startArchiver(t, "-socket", sock3, "-dir", dir3, "-stats-interval", "0")
	an3 := startCmd(t, "analyzer3.log", analyzerBin, "-socket", sock3, "-name", "an", "-lossless", "-out", out3)
	rep := startCmd(t, "replay.log", producerBin, "-socket", sock3, "-source", "archive", "-archive", dir, "-event", "2",
		"-speed", "max", "-wait-consumers", "2", "-stats-interval", "0")
	if err := rep.Wait(); err != nil {
		t.Fatalf("replay: %v", err)
	}
	a3.waitLine("the ring ended")
	a3.stop(syscall.SIGTERM)
	an3.Process.Signal(syscall.SIGTERM)
	an3.Wait()
	got, _ := frameRecords(t, dir3)
	if uint64(len(got)) != ev.Frames {
		t.Fatalf("event 2 replayed as %d frames of %d", len(got), ev.Frames)
	}
	for i, rec := range got {
		if !bytes.Equal(rec.Payload, byRecord[ev.FirstRecord+uint64(i)].Payload) {
			t.Fatalf("event 2 frame %d differs after the replay", i)
		}
	}
	lines, err := os.ReadFile(out3)
	if err != nil {
		t.Fatal(err)
	}
	var replayed []results.Result
	for _, l := range bytes.Split(bytes.TrimSpace(lines), []byte("\n")) {
		var r results.Result
		if json.Unmarshal(l, &r) == nil && r.Seq != 0 {
			replayed = append(replayed, r)
		}
	}
	tr := ev.Triggers[0]
	var live results.Result
	if err := json.Unmarshal(tr.Result, &live); err != nil {
		t.Fatal(err)
	}
	k := tr.Seq - ev.FirstSeq
	if uint64(len(replayed)) != ev.Frames || replayed[k].DefectCount != live.DefectCount ||
		fmt.Sprint(replayed[k].Defects) != fmt.Sprint(live.Defects) {
		t.Fatalf("the analyzer on the replay: %d lines; frame %d: %+v, live %+v", len(replayed), k, replayed[k], live)
	}
}
