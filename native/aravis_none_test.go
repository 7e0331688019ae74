//go:build !aravis || !cgo

package native_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/framering/framering/native"
)

// TestAravisUnavailable: a build without the backend says how to get it.
func TestAravisUnavailable(t *testing.T) {
	if native.AravisAvailable {
		t.Fatal("AravisAvailable in a build without the aravis tag and cgo")
	}
	_, err := native.Open(native.KindAravis, native.Config{})
	if !errors.Is(err, native.ErrNoAravis) {
		t.Fatalf("open: %v", err)
	}
	for _, hint := range []string{"-tags aravis", "libaravis-dev"} {
		if !strings.Contains(err.Error(), hint) {
			t.Errorf("%q does not say %q", err, hint)
		}
	}
	if _, err := native.ListCameras(); !errors.Is(err, native.ErrNoAravis) {
		t.Fatalf("list cameras: %v", err)
	}
}
