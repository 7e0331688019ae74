package diag_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

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

// ServeMetrics serves the collectors given, with the Go runtime's, at
// /metrics on localhost.
func TestServeMetrics(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "framering_test_total", Help: "A test counter."})
	c.Add(3)
	addr, err := diag.ServeMetrics(ctx, ":0", slog.New(slog.DiscardHandler), c)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(addr, "127.0.0.1:") && !strings.HasPrefix(addr, "[::1]:") {
		t.Fatalf("a bare :PORT listens on %s, not localhost", addr)
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(b), "framering_test_total 3") || !strings.Contains(string(b), "go_goroutines") {
		t.Fatalf("metrics:\n%s", b)
	}
	if _, err := diag.ServeMetrics(ctx, addr, slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("a second listener on the same address")
	}
}
