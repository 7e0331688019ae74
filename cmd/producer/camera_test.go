package main

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/framering/framering/native"
)

// The camera flags parse in every build; a build without the Aravis
// backend says how to get one; a camera's geometry is set through its
// features, and the flags say so.
func TestCameraFlags(t *testing.T) {
	args := []string{"-source", "aravis", "-camera", "192.168.1.20", "-set", "Width=640", "-set", "PixelFormat=Mono16",
		"-set", "DeviceUserID=a b=c", "-packet-size", "9000", "-packet-resend=false"}
	o, err := parseFlags(args, io.Discard)
	if !native.AravisAvailable {
		if err == nil || !strings.Contains(err.Error(), "-tags aravis") {
			t.Fatalf("-source aravis without the backend: %v", err)
		}
		var errb bytes.Buffer
		if code := run([]string{"-list-cameras"}, io.Discard, &errb); code != exitUsage || !strings.Contains(errb.String(), "libaravis-dev") {
			t.Fatalf("-list-cameras without the backend: exit %d, %q", code, errb.String())
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	c := o.cfg.Camera
	want := []native.FeatureSetting{{Name: "Width", Value: "640"}, {Name: "PixelFormat", Value: "Mono16"}, {Name: "DeviceUserID", Value: "a b=c"}}
	if o.cfg.Source != native.KindAravis || c.Camera != "192.168.1.20" || len(c.Settings) != 3 || c.PacketSize != 9000 || !c.NoResend {
		t.Fatalf("parsed %+v", c)
	}
	for i := range want {
		if c.Settings[i] != want[i] {
			t.Fatalf("setting %d: %+v, want %+v", i, c.Settings[i], want[i])
		}
	}
	for _, tc := range []struct {
		args []string
		hint string
	}{
		{[]string{"-source", "aravis", "-width", "640"}, "-set Width=N"},
		{[]string{"-source", "aravis", "-format", "Mono16"}, "-set PixelFormat=NAME"},
		{[]string{"-source", "aravis", "-fps", "30"}, "-set AcquisitionFrameRate=N"},
		{[]string{"-source", "aravis", "-set", "Width"}, "Feature=Value"},
		{[]string{"-source", "synthetic", "-camera", "x"}, "-camera needs -source aravis"},
		{[]string{"-set", "Width=1"}, "-set needs -source aravis"},
	} {
		var errb bytes.Buffer
		if code := run(tc.args, io.Discard, &errb); code != exitUsage || !strings.Contains(errb.String(), tc.hint) {
			t.Errorf("%q: exit %d, %q: want a usage error saying %q", tc.args, code, errb.String(), tc.hint)
		}
	}
}
