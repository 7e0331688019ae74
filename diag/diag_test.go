package diag_test

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/framering/framering/diag"
)

func TestServe(t *testing.T) {
	s, err := diag.Serve("localhost:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		"/debug/pprof/heap?debug=1":      "heap profile",
		"/debug/pprof/goroutine?debug=1": "goroutine profile",
		"/debug/vars":                    "memstats",
	} {
		resp, err := http.Get("http://" + s.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Fatalf("%s: %d %.200s", path, resp.StatusCode, b)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get("http://" + s.Addr() + "/debug/vars"); err == nil {
		t.Fatal("still serving after Close")
	}
}

func TestLoopbackOnly(t *testing.T) {
	for _, a := range []string{"0.0.0.0:0", ":0", "192.0.2.1:0", "example.com:0"} {
		if _, err := diag.Serve(a, nil); !errors.Is(err, diag.ErrNotLoopback) {
			t.Errorf("%s: %v", a, err)
		}
	}
	s, err := diag.Serve("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
}
