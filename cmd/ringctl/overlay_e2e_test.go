package main

import (
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/framering/framering/frame"
)

// TestOverlayEndToEnd: ringctl serve shows the analyzer's verdicts on the
// frames, from its live results stream (real producer with sparse defects,
// analyzer -results, ringctl serve): a frame served with boxes is one with
// injected defects and the boxes are its result's; a plain frame's result
// has none.
func TestOverlayEndToEnd(t *testing.T) {
	bin := binaries(t)
	const ring = "overlay"
	j := []string{"-log-format", "json"}
	start(t, filepath.Join(bin, "producer"), "", append(j, "-ring", ring, "-source", "synthetic", "-defects", "-defect-every", "10",
		"-width", "320", "-height", "240", "-fps", "100", "-slots", "16", "-stats-interval", "0")...)
	start(t, filepath.Join(bin, "analyzer"), "", append(j, "-ring", ring, "-results", "-out", filepath.Join(t.TempDir(), "a.jsonl"))...)
	srv := start(t, filepath.Join(bin, "ringctl"), "metrics", append([]string{"serve"}, append(j, "-listen", "127.0.0.1:0",
		"-interval", "200ms")...)...)
	url := srv.url() + "/api/rings/" + ring + "/frame?format=png"
	g := frame.Packed(320, 240, frame.Mono8)
	var withBoxes, plain int
	deadline := time.Now().Add(60 * time.Second)
	for withBoxes < 2 || plain < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("frames with verdicts: %d with defects, %d plain\nserver: %s", withBoxes, plain, srv.logs())
		}
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		var d *struct {
			Seq   uint64 `json:"seq"`
			Boxes []struct {
				X, Y, W, H int
			} `json:"boxes"`
		}
		if err := json.Unmarshal([]byte(resp.Header.Get("X-Frame-Defects")), &d); err != nil {
			t.Fatalf("X-Frame-Defects %q: %v", resp.Header.Get("X-Frame-Defects"), err)
		}
		if d == nil {
			time.Sleep(10 * time.Millisecond)
			continue // no result for the frame shown (yet)
		}
		seq, _ := strconv.ParseUint(resp.Header.Get("X-Frame-Seq"), 10, 64)
		id, _ := strconv.ParseUint(resp.Header.Get("X-Frame-Id"), 10, 64)
		if d.Seq != seq {
			t.Fatalf("frame %d shown with the result of frame %d", seq, d.Seq)
		}
		injected := id%10 == 0 && len(frame.Defects(nil, g, id)) > 0
		switch {
		case len(d.Boxes) > 0 && !injected:
			t.Fatalf("frame id %d (seq %d) without injected defects shown with boxes %+v", id, seq, d.Boxes)
		case len(d.Boxes) > 0:
			withBoxes++
		case injected:
			t.Fatalf("frame id %d (seq %d) with injected defects shown without boxes", id, seq)
		default:
			plain++
		}
		time.Sleep(10 * time.Millisecond)
	}
}
