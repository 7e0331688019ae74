package native

import (
	"errors"
	"strings"
	"testing"

	"github.com/framering/framering/frame"
)

// The caps table maps each GStreamer format to the PFNC format of the
// same layout (checked by name), and the sink accepts exactly the ones
// the frame package knows.
func TestGstFormatTable(t *testing.T) {
	names := map[string]string{
		"GRAY8": "Mono8", "GRAY16_LE": "Mono16", "RGB": "RGB8", "BGR": "BGR8",
		"YUY2": "YUV422_8", "UYVY": "YUV422_8_UYVY",
		"grbg": "BayerGR8", "rggb": "BayerRG8", "gbrg": "BayerGB8", "bggr": "BayerBG8",
		"grbg16le": "BayerGR16", "rggb16le": "BayerRG16", "gbrg16le": "BayerGB16", "bggr16le": "BayerBG16",
	}
	allowed := gstAllowedCaps()
	for _, f := range gstFormats {
		want, ok := names[f.name]
		if !ok {
			t.Fatalf("%s %s: no expected PFNC name", f.media, f.name)
		}
		got, known := gstFormatOf(f.media, f.name)
		if known != f.format.Valid() {
			t.Fatalf("%s: known %v, valid %v", f.name, known, f.format.Valid())
		}
		if known && (got != f.format || got.String() != want) {
			t.Errorf("%s %s maps to %v, want %s", f.media, f.name, got, want)
		}
		if in := strings.Contains(allowed, " "+f.name+",") || strings.Contains(allowed, " "+f.name+" }"); in != known {
			t.Errorf("%s in the sink's caps %q: %v, want %v", f.name, allowed, in, known)
		}
	}
	for _, name := range []string{"GRAY8", "GRAY16_LE", "RGB", "BGR", "YUY2", "UYVY", "rggb", "bggr16le"} {
		if !strings.Contains(allowed, name) {
			t.Errorf("the sink's caps %q lack %s", allowed, name)
		}
	}
	if _, ok := gstFormatOf("video/x-raw", "I420"); ok {
		t.Error("I420 (planar) mapped")
	}
	if _, ok := gstFormatOf("video/x-bayer", "GRAY8"); ok {
		t.Error("a raw format mapped under video/x-bayer")
	}
}

func TestGstGeometry(t *testing.T) {
	g, err := gstGeometry("video/x-raw", "GRAY8", 30, 20, 32, 640)
	if err != nil || g != (frame.Geometry{Width: 30, Height: 20, Stride: 32, Format: frame.Mono8}) {
		t.Fatalf("gray8: %+v, %v", g, err)
	}
	for name, tc := range map[string]struct {
		media, format string
		w, h, stride  int
		size          uint64
		want          error
	}{
		"planar":       {"video/x-raw", "I420", 30, 20, 32, 960, frame.ErrFormat},
		"short stride": {"video/x-raw", "RGB", 30, 20, 80, 1600, frame.ErrGeometry},
		"zero height":  {"video/x-raw", "GRAY8", 30, 0, 32, 0, frame.ErrGeometry},
		"size":         {"video/x-raw", "GRAY8", 30, 20, 32, 641, frame.ErrGeometry},
	} {
		if _, err := gstGeometry(tc.media, tc.format, tc.w, tc.h, tc.stride, tc.size); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
}
