package framesrc_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// framesrcProps are framesrc's own properties; gst-inspect-1.0 must
// document each (and GstBaseSrc's do-timestamp, which framesrc
// re-documents).
var framesrcProps = []string{
	"ring", "socket", "consumer-name", "lossless", "start", "reattach", "eos-on-close", "quota-policy",
	"max-held", "max-copies", "framerate", "stall-after", "stats-interval", "do-timestamp",
	"frames-pushed", "frames-copied", "frames-dropped", "frames-lost", "leases-held", "leases-revoked", "stats",
}

var propLine = regexp.MustCompile(`^  ([a-z][a-z0-9-]*)\s+: (.*)$`)

// inspect returns gst-inspect-1.0's property blurbs for framesrc.
func inspect(t *testing.T, env []string) (map[string]string, string) {
	t.Helper()
	cmd := exec.Command("gst-inspect-1.0", "framesrc")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("gst-inspect-1.0 framesrc: %v\n%s", err, out)
	}
	props := map[string]string{}
	in := false
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "Element Properties:") {
			in = true
			continue
		}
		if m := propLine.FindStringSubmatch(l); in && m != nil {
			props[m[1]] = m[2]
		}
	}
	return props, string(out)
}

func TestInspectDocumentsEveryProperty(t *testing.T) {
	setup(t)
	props, out := inspect(t, tools.env)
	for _, p := range framesrcProps {
		blurb, ok := props[p]
		if !ok {
			t.Errorf("gst-inspect-1.0 framesrc lists no property %q", p)
			continue
		}
		// A sentence that says what it does, not the name again.
		if len(blurb) < 30 || strings.EqualFold(strings.TrimSpace(blurb), p) {
			t.Errorf("property %q is not documented: %q", p, blurb)
		}
	}
	for _, want := range []string{"video/x-raw", "GRAY16_LE", "video/x-bayer", "grbg", "Source/Video",
		"Enum \"GstFrameSrcQuotaPolicy\"", "(0): copy", "(1): drop", "(1): oldest"} {
		if !strings.Contains(out, want) {
			t.Errorf("gst-inspect-1.0 framesrc does not show %q:\n%s", want, out)
		}
	}
}

// TestInstall installs the plugin with make install PREFIX=... and finds it
// there through GST_PLUGIN_PATH, as README says.
func TestInstall(t *testing.T) {
	setup(t)
	prefix := filepath.Join(t.TempDir(), "prefix")
	// The sanitized build is the one already made: install only copies.
	// With the asan target's flags, so that make never relinks the
	// sanitized plugin without them.
	out, err := exec.Command("make", "-s", "install", "BUILD="+tools.plugin, "PREFIX="+prefix, "CFLAGS=-O1 -g",
		"SAN=-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer").CombinedOutput()
	if err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	dir := filepath.Join(prefix, "lib", "gstreamer-1.0")
	if _, err := os.Stat(filepath.Join(dir, "libgstframering.so")); err != nil {
		t.Fatalf("make install PREFIX=%s: %v", prefix, err)
	}
	env := append([]string{}, tools.env...)
	for i, e := range env {
		switch {
		case strings.HasPrefix(e, "GST_PLUGIN_PATH="):
			env[i] = "GST_PLUGIN_PATH=" + dir
		case strings.HasPrefix(e, "GST_REGISTRY="):
			env[i] = "GST_REGISTRY=" + filepath.Join(t.TempDir(), "registry.bin")
		}
	}
	_, text := inspect(t, env)
	if !strings.Contains(text, filepath.Join(dir, "libgstframering.so")) {
		t.Fatalf("gst-inspect-1.0 did not load the installed plugin:\n%s", text)
	}
	// The plugin exports only GStreamer's entry points: libframering is
	// linked in and hidden.
	nm, err := exec.Command("nm", "-D", "--defined-only", filepath.Join(dir, "libgstframering.so")).Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(nm)), "\n") {
		if f := strings.Fields(l); len(f) == 3 && !strings.HasPrefix(f[2], "gst_plugin_framering_") &&
			!strings.HasPrefix(f[2], "__") && !strings.HasPrefix(f[2], "_") {
			t.Errorf("the plugin exports %s", f[2])
		}
	}
}

// TestUnit runs the C unit test (formats, layouts, caps) built under
// ASan+UBSan with the plugin.
func TestUnit(t *testing.T) {
	setup(t)
	cmd := exec.Command(filepath.Join(tools.plugin, "unit"))
	cmd.Env = append(os.Environ(), "ASAN_OPTIONS=detect_leaks=0", "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "unit: ok") {
		t.Fatalf("unit: %v\n%s", err, out)
	}
}
