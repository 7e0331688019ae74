package diag_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/framering/framering/internal/diag"
)

// The endpoint serves a heap profile on localhost (a bare port means
// localhost) and stops with its context.
func TestServesHeapProfileOnLocalhost(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	addr, err := diag.Serve(ctx, ":0", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(addr, "127.0.0.1:") && !strings.HasPrefix(addr, "[::1]:") {
		t.Fatalf("listening on %s, want localhost", addr)
	}
	resp, err := http.Get("http://" + addr + "/debug/pprof/heap?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), "heap profile") {
		t.Fatalf("heap profile: %d %.100s", resp.StatusCode, b)
	}
	cancel()
	for range 500 {
		if _, err := http.Get("http://" + addr + "/debug/pprof/"); err != nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("still serving after its context ended")
}
