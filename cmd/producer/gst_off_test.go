//go:build !gst || !cgo

package main

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

// In a build without the GStreamer source, -source gst is a usage error
// that says how to get one.
func TestGstNeedsItsBuildTag(t *testing.T) {
	var errb bytes.Buffer
	code := run([]string{"-source", "gst", "-pipeline", "videotestsrc"}, io.Discard, &errb)
	if code != exitUsage || !strings.Contains(errb.String(), "build with -tags gst") {
		t.Fatalf("exit %d, %q", code, errb.String())
	}
}
