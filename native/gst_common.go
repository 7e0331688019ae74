package native

// The parts of the GStreamer backend that need no GStreamer: the caps <->
// pixel format table, the caps the sink accepts, and the flags it sets.
// The backend itself is gst.go (build tag gst, cgo); gst_off.go stands in
// for it in every other build.

import (
	"fmt"
	"strings"
	"time"

	"github.com/framering/framering/frame"
)

// KindGst is a GStreamer pipeline (Config.Pipeline) as the frame source:
// in a build with the gst tag (and cgo), else Open returns ErrNoGst.
const KindGst = "gst"

// Flags the GStreamer source sets in FrameInfo.Flags (bits 16-31 are the
// source's own; they travel into the ring's descriptor unchanged).
const (
	// FlagGstDiscont: the buffer carried GST_BUFFER_FLAG_DISCONT, a
	// discontinuity upstream (the stream's first buffer, or data lost
	// before the sink: a driver's or the network's drops, which the sink
	// cannot count).
	FlagGstDiscont uint32 = 1 << 16
	// FlagGstCopied: upstream did not write into the buffer the sink lent
	// it, and the sink copied the frame into it (Counters.Copies).
	FlagGstCopied uint32 = 1 << 17
)

// GstOpenTimeout bounds how long Open waits for a GStreamer pipeline to
// negotiate its caps (a network source waits for its first packets).
const GstOpenTimeout = 20 * time.Second

// gstFormat is one row of the caps table: a GStreamer media type and
// format string, and the PFNC code of the same memory layout.
type gstFormat struct {
	media, name string
	format      frame.Format
}

// gstFormats maps GStreamer's raw formats to the frame package's PFNC
// formats, byte for byte: only formats whose memory layout is exactly the
// PFNC one are listed (GStreamer's GRAY10_LE32, three 10-bit pixels in 32
// bits, is no PFNC layout; its 10- and 12-bit Bayer formats are in 1.24).
// Bayer rows are GStreamer's 4-byte aligned stride (videotestsrc,
// bayer2rgb). A row whose format frame.Format.Valid does not know is left
// out of the caps the sink accepts.
var gstFormats = [...]gstFormat{
	{"video/x-raw", "GRAY8", frame.Mono8},
	{"video/x-raw", "GRAY16_LE", frame.Mono16},
	{"video/x-raw", "RGB", frame.RGB8},
	{"video/x-raw", "BGR", frame.BGR8},
	{"video/x-raw", "YUY2", frame.YUV422_8},      // Y0 U Y1 V
	{"video/x-raw", "UYVY", frame.YUV422_8_UYVY}, // U Y0 V Y1
	{"video/x-bayer", "grbg", frame.BayerGR8},
	{"video/x-bayer", "rggb", frame.BayerRG8},
	{"video/x-bayer", "gbrg", frame.BayerGB8},
	{"video/x-bayer", "bggr", frame.BayerBG8},
	{"video/x-bayer", "grbg16le", frame.BayerGR16}, // GStreamer 1.24
	{"video/x-bayer", "rggb16le", frame.BayerRG16},
	{"video/x-bayer", "gbrg16le", frame.BayerGB16},
	{"video/x-bayer", "bggr16le", frame.BayerBG16},
}

// gstFormatOf returns the PFNC format of a GStreamer media type and format
// string, if this build can describe it.
func gstFormatOf(media, name string) (frame.Format, bool) {
	for _, f := range gstFormats {
		if f.media == media && f.name == name && f.format.Valid() {
			return f.format, true
		}
	}
	return 0, false
}

// gstAllowedCaps is the caps string the sink accepts: every listed format
// the frame package knows, in table order (the order upstream prefers).
func gstAllowedCaps() string {
	var structs []string
	for _, media := range []string{"video/x-raw", "video/x-bayer"} {
		var names []string
		for _, f := range gstFormats {
			if f.media == media && f.format.Valid() {
				names = append(names, f.name)
			}
		}
		if len(names) > 0 {
			structs = append(structs, fmt.Sprintf("%s, format=(string){ %s }", media, strings.Join(names, ", ")))
		}
	}
	return strings.Join(structs, "; ")
}

// gstGeometry is the frame geometry of negotiated caps: a known format,
// and GStreamer's stride and frame size consistent with it.
func gstGeometry(media, name string, width, height, stride int, size uint64) (frame.Geometry, error) {
	f, ok := gstFormatOf(media, name)
	if !ok {
		return frame.Geometry{}, fmt.Errorf("map caps %s format=%s: %w", media, name, frame.ErrFormat)
	}
	g := frame.Geometry{Width: width, Height: height, Stride: stride, Format: f}
	if err := g.Validate(); err != nil {
		return frame.Geometry{}, fmt.Errorf("map caps %s format=%s %dx%d stride %d: %w", media, name, width, height, stride, err)
	}
	if uint64(g.Size()) != size {
		return frame.Geometry{}, fmt.Errorf("map caps %s format=%s: %w: frame of %d bytes, not stride x height", media, name, frame.ErrGeometry, size)
	}
	return g, nil
}
