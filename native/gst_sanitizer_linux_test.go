//go:build gst && cgo

package native_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestGstCSanitizers compiles the GStreamer backend's C (frgst.c) with
// its C driver (testdata/gst_test.c) under AddressSanitizer and
// UndefinedBehaviorSanitizer, runs it with GStreamer's leak tracer, and
// requires the driver's "ok", no sanitizer report and no GStreamer object
// left alive (a leaked message, buffer, pipeline).
//
// ThreadSanitizer is not run: GLib's mutexes and thread pools are futex
// based and uninstrumented, so TSan sees none of the happens-before edges
// GStreamer's threads rely on and reports GLib's internals (and every
// hand-off of our objects to a streaming thread) as races.
//
// By hand:
//
//	gcc -std=c11 -O1 -g -Wall -Wextra -Werror -fsanitize=address,undefined -fno-omit-frame-pointer \
//	    -fno-sanitize-recover=all -pthread native/testdata/gst_test.c native/frgst.c -o /tmp/gst_test \
//	    $(pkg-config --cflags --libs gstreamer-1.0 gstreamer-base-1.0 gstreamer-video-1.0)
//	ASAN_OPTIONS=fast_unwind_on_malloc=0 LSAN_OPTIONS=suppressions=native/testdata/gst_lsan.supp /tmp/gst_test
func TestGstCSanitizers(t *testing.T) {
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Fatal("gcc not found (scripts/setup.sh installs it)")
	}
	pc, err := exec.Command("pkg-config", "--cflags", "--libs", "gstreamer-1.0", "gstreamer-base-1.0", "gstreamer-video-1.0").Output()
	if err != nil {
		t.Fatalf("pkg-config: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "gst_test")
	args := []string{"-std=c11", "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-fno-omit-frame-pointer", "-pthread",
		"-fsanitize=address,undefined", "-fno-sanitize-recover=all",
		filepath.Join("testdata", "gst_test.c"), "frgst.c", "-o", bin}
	args = append(args, strings.Fields(string(pc))...)
	if out, err := exec.Command(gcc, args...).CombinedOutput(); err != nil {
		t.Fatalf("gcc %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	supp, err := filepath.Abs(filepath.Join("testdata", "gst_lsan.supp"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard*3)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = append(cmd.Environ(),
		"ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=0:fast_unwind_on_malloc=0",
		"LSAN_OPTIONS=suppressions="+supp,
		"UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1",
		"GST_TRACERS=leaks", "GST_DEBUG=GST_TRACER:7", "GST_DEBUG_NO_COLOR=1")
	out, err := cmd.CombinedOutput()
	text := string(out)
	alive := false
	for _, line := range strings.Split(text, "\n") {
		alive = alive || (strings.Contains(line, "object-alive,") && !strings.Contains(line, "format string"))
	}
	if err != nil || !strings.HasSuffix(strings.TrimSpace(text), "ok") || strings.Contains(text, "ERROR: ") ||
		strings.Contains(text, "runtime error") || alive {
		t.Fatalf("gst_test: %v\n%s", err, text)
	}
}
