package frame

import (
	"errors"
	"fmt"
	"strings"
)

// Format is a pixel format, identified by its GenICam Pixel Format Naming
// Convention (PFNC) code, the 32-bit value frame grabbers, GenTL producers
// and Aravis (ArvPixelFormat) report. Using PFNC codes means a real
// camera's value can be stored in a ring descriptor unchanged.
//
// Everything framering knows about a format is in one table, formats
// below; every property (name, size, layout) is read from it. A code not
// in the table is not Valid, and every consumer of pixels refuses it with
// ErrFormat.
type Format uint32

// The pixel formats framering's sources produce, its analyzer measures and
// its archive exports. The codes are the PFNC 2.x values (the same as
// Aravis's ARV_PIXEL_FORMAT_* defines where Aravis has one).
const (
	// Mono8 is 8-bit gray, one byte per pixel.
	Mono8 Format = 0x01080001
	// Mono10 is 10-bit gray in a little-endian uint16, unused high bits zero.
	Mono10 Format = 0x01100003
	// Mono12 is 12-bit gray in a little-endian uint16, unused high bits zero.
	Mono12 Format = 0x01100005
	// Mono16 is 16-bit gray, a little-endian uint16 per pixel.
	Mono16 Format = 0x01100007
	// Mono10p is 10-bit gray packed LSB first (PFNC "p"): 4 pixels in 5 bytes.
	Mono10p Format = 0x010A0046
	// Mono12p is 12-bit gray packed LSB first (PFNC "p"): 2 pixels in 3 bytes.
	Mono12p Format = 0x010C0047
	// Mono10Packed is 10-bit gray in GigE Vision 1.x packing: 2 pixels in
	// 3 bytes, a different bit order from Mono10p (see PackedGEV).
	Mono10Packed Format = 0x010C0004
	// Mono12Packed is 12-bit gray in GigE Vision 1.x packing: 2 pixels in
	// 3 bytes, a different bit order from Mono12p (see PackedGEV).
	Mono12Packed Format = 0x010C0006

	// BayerGR8 is an 8-bit raw mosaic whose 2x2 cell is G R / B G.
	BayerGR8 Format = 0x01080008
	// BayerRG8 is an 8-bit raw mosaic whose 2x2 cell is R G / G B.
	BayerRG8 Format = 0x01080009
	// BayerGB8 is an 8-bit raw mosaic whose 2x2 cell is G B / R G.
	BayerGB8 Format = 0x0108000A
	// BayerBG8 is an 8-bit raw mosaic whose 2x2 cell is B G / G R.
	BayerBG8 Format = 0x0108000B
	// BayerGR16 is BayerGR8's mosaic with little-endian uint16 samples.
	BayerGR16 Format = 0x0110002E
	// BayerRG16 is BayerRG8's mosaic with little-endian uint16 samples.
	BayerRG16 Format = 0x0110002F
	// BayerGB16 is BayerGB8's mosaic with little-endian uint16 samples.
	BayerGB16 Format = 0x01100030
	// BayerBG16 is BayerBG8's mosaic with little-endian uint16 samples.
	BayerBG16 Format = 0x01100031

	// RGB8 is 8-bit-per-channel color, three bytes per pixel: R, G, B.
	RGB8 Format = 0x02180014
	// BGR8 is 8-bit-per-channel color, three bytes per pixel: B, G, R.
	BGR8 Format = 0x02180015

	// YUV422_8 is 4:2:2 luma/chroma, 8 bits per sample, two pixels in four
	// bytes Y0 U Y1 V ("YUYV"). Aravis: ARV_PIXEL_FORMAT_YUV_422_YUYV_PACKED.
	YUV422_8 Format = 0x02100032
	// YUV422_8_UYVY is YUV422_8 with the bytes of a pair in the order
	// U Y0 V Y1. It is the GigE Vision 1.x "YUV422Packed" most GigE
	// cameras send (Aravis: ARV_PIXEL_FORMAT_YUV_422_PACKED).
	YUV422_8_UYVY Format = 0x0210001F
)

// Kind is how a format's samples make up a pixel.
type Kind uint8

// The kinds of pixel formats.
const (
	// KindMono: one gray sample per pixel.
	KindMono Kind = iota + 1
	// KindBayer: one sample per pixel, of the color the 2x2 color filter
	// array (FormatInfo.CFA) gives its position.
	KindBayer
	// KindRGB: three samples per pixel, at the byte offsets FormatInfo.Order
	// gives for red, green and blue.
	KindRGB
	// KindYUV422: a luma sample per pixel; each pair of pixels (even x,
	// x+1) shares one U and one V sample. FormatInfo.Order gives the byte
	// offsets of Y0, U, Y1 and V in the pair's four bytes.
	KindYUV422
)

// Packing is how samples are laid out in bytes.
type Packing uint8

// The packings.
const (
	// Unpacked: every sample in whole bytes, 8-bit, or a little-endian
	// uint16 holding SampleBits significant bits (LSB-aligned, the unused
	// high bits zero).
	Unpacked Packing = iota + 1
	// PackedLSB is PFNC's "p" packing: the samples of a row are back to
	// back in a bit stream that fills each byte from its least significant
	// bit; sample x occupies stream bits [x*B, (x+1)*B), its least
	// significant bit first, where stream bit k is bit k%8 of byte k/8.
	// Each row starts on a byte boundary (see Format.RowBytes); unused bits
	// of a row's last byte are zero.
	PackedLSB
	// PackedGEV is GigE Vision 1.x's "Packed" (Mono10Packed,
	// Mono12Packed): each pair of pixels (x even, x+1) with n-bit samples
	// p0, p1 and l = n-8 low bits fills three bytes,
	//	byte 0 = p0 >> l
	//	byte 1 = (p0 & (2^l-1)) | (p1 & (2^l-1)) << 4
	//	byte 2 = p1 >> l
	// so BitsPerPixel is 12 whatever n is. A row of odd width ends with a
	// lone pixel in two bytes (bytes 0 and 1, the rest of byte 1 zero).
	PackedGEV
)

// Color is a Bayer filter color.
type Color uint8

// The filter colors of a Bayer mosaic.
const (
	Red Color = iota
	Green
	Blue
)

// FormatInfo is one row of the format table: everything framering knows
// about a pixel format.
type FormatInfo struct {
	Format Format
	// Name is the PFNC name, as String prints and ParseFormat reads it.
	Name string
	// BitsPerPixel is the bits one pixel occupies in memory: PFNC's
	// "effective bits per pixel", bits 16-23 of the code (16 for a 4:2:2
	// pixel, 10 for Mono10p).
	BitsPerPixel int
	// SampleBits is the significant bits of one sample (10 for Mono10,
	// whose samples occupy 16).
	SampleBits int
	Packing    Packing
	Kind       Kind
	// Components is the samples per pixel: 1 (Mono, Bayer), 3 (RGB), 2
	// (YUV422: its own Y and every other pixel's U or V).
	Components int
	// CFA is, for KindBayer, the filter color of pixels (0,0), (1,0),
	// (0,1) and (1,1); pixel (x, y) has color CFA[(y%2)*2 + x%2].
	CFA [4]Color
	// Order is, for KindRGB, the byte offsets of red, green and blue in a
	// pixel (Order[3] unused); for KindYUV422, the byte offsets of Y0, U,
	// Y1 and V in a pair of pixels.
	Order [4]uint8
	// WidthMultiple is what the width must be a multiple of (2 for
	// YUV422, whose pixels come in pairs; else 1).
	WidthMultiple int
}

// formats is the table. Order is the order Formats lists them in.
var formats = [...]FormatInfo{
	mono(Mono8, "Mono8", 8, 8, Unpacked),
	mono(Mono10, "Mono10", 16, 10, Unpacked),
	mono(Mono12, "Mono12", 16, 12, Unpacked),
	mono(Mono16, "Mono16", 16, 16, Unpacked),
	mono(Mono10p, "Mono10p", 10, 10, PackedLSB),
	mono(Mono12p, "Mono12p", 12, 12, PackedLSB),
	mono(Mono10Packed, "Mono10Packed", 12, 10, PackedGEV),
	mono(Mono12Packed, "Mono12Packed", 12, 12, PackedGEV),
	bayer(BayerGR8, "BayerGR8", 8, [4]Color{Green, Red, Blue, Green}),
	bayer(BayerRG8, "BayerRG8", 8, [4]Color{Red, Green, Green, Blue}),
	bayer(BayerGB8, "BayerGB8", 8, [4]Color{Green, Blue, Red, Green}),
	bayer(BayerBG8, "BayerBG8", 8, [4]Color{Blue, Green, Green, Red}),
	bayer(BayerGR16, "BayerGR16", 16, [4]Color{Green, Red, Blue, Green}),
	bayer(BayerRG16, "BayerRG16", 16, [4]Color{Red, Green, Green, Blue}),
	bayer(BayerGB16, "BayerGB16", 16, [4]Color{Green, Blue, Red, Green}),
	bayer(BayerBG16, "BayerBG16", 16, [4]Color{Blue, Green, Green, Red}),
	{Format: RGB8, Name: "RGB8", BitsPerPixel: 24, SampleBits: 8, Packing: Unpacked, Kind: KindRGB,
		Components: 3, Order: [4]uint8{0, 1, 2, 0}, WidthMultiple: 1},
	{Format: BGR8, Name: "BGR8", BitsPerPixel: 24, SampleBits: 8, Packing: Unpacked, Kind: KindRGB,
		Components: 3, Order: [4]uint8{2, 1, 0, 0}, WidthMultiple: 1},
	{Format: YUV422_8, Name: "YUV422_8", BitsPerPixel: 16, SampleBits: 8, Packing: Unpacked, Kind: KindYUV422,
		Components: 2, Order: [4]uint8{0, 1, 2, 3}, WidthMultiple: 2},
	{Format: YUV422_8_UYVY, Name: "YUV422_8_UYVY", BitsPerPixel: 16, SampleBits: 8, Packing: Unpacked, Kind: KindYUV422,
		Components: 2, Order: [4]uint8{1, 0, 3, 2}, WidthMultiple: 2},
}

func mono(f Format, name string, bits, sample int, p Packing) FormatInfo {
	return FormatInfo{Format: f, Name: name, BitsPerPixel: bits, SampleBits: sample, Packing: p, Kind: KindMono,
		Components: 1, WidthMultiple: 1}
}

func bayer(f Format, name string, bits int, cfa [4]Color) FormatInfo {
	return FormatInfo{Format: f, Name: name, BitsPerPixel: bits, SampleBits: bits, Packing: Unpacked, Kind: KindBayer,
		Components: 1, CFA: cfa, WidthMultiple: 1}
}

// ErrFormat is returned when a pixel format code is not one framering knows.
var ErrFormat = errors.New("unknown pixel format")

// ErrGeometry is returned when a width, height or stride is impossible for
// its format, or does not fit the buffer it describes.
var ErrGeometry = errors.New("invalid frame geometry")

// Info returns the table row of f; ok is false for a code not in the table.
func (f Format) Info() (info FormatInfo, ok bool) {
	if p := f.info(); p != nil {
		return *p, true
	}
	return FormatInfo{}, false
}

// info returns a pointer into the table, or nil. The table is small (a
// linear scan of 18 codes is a few nanoseconds) and never written.
func (f Format) info() *FormatInfo {
	for i := range formats {
		if formats[i].Format == f {
			return &formats[i]
		}
	}
	return nil
}

// Formats returns every format framering knows, in table order.
func Formats() []Format {
	out := make([]Format, len(formats))
	for i := range formats {
		out[i] = formats[i].Format
	}
	return out
}

// FormatNames returns the names of every format, comma-separated, for
// usage messages.
func FormatNames() string {
	names := make([]string, len(formats))
	for i := range formats {
		names[i] = formats[i].Name
	}
	return strings.Join(names, ", ")
}

// Valid reports whether f is a format framering knows.
func (f Format) Valid() bool { return f.info() != nil }

// BitsPerPixel returns the bits one pixel occupies in memory, or 0 for an
// unknown format.
func (f Format) BitsPerPixel() int {
	if p := f.info(); p != nil {
		return p.BitsPerPixel
	}
	return 0
}

// BytesPerPixel returns the whole bytes one pixel occupies, or 0 for a
// packed format (whose pixels do not occupy whole bytes: use RowBytes) and
// for an unknown format.
func (f Format) BytesPerPixel() int {
	if p := f.info(); p != nil && p.BitsPerPixel%8 == 0 {
		return p.BitsPerPixel / 8
	}
	return 0
}

// RowBytes returns the bytes a row of width pixels occupies, padding
// excluded: ceil(width*BitsPerPixel/8). It is 0 for an unknown format or
// a width that is not positive.
func (f Format) RowBytes(width int) int {
	p := f.info()
	if p == nil || width <= 0 {
		return 0
	}
	return int((uint64(width)*uint64(p.BitsPerPixel) + 7) / 8)
}

// String returns the PFNC name of the format, or Format(0x...) for a code
// not in the table.
func (f Format) String() string {
	if p := f.info(); p != nil {
		return p.Name
	}
	return fmt.Sprintf("Format(%#08x)", uint32(f))
}

// ParseFormat maps a PFNC name (case-sensitive, as printed by String) to a Format.
func ParseFormat(name string) (Format, error) {
	for i := range formats {
		if formats[i].Name == name {
			return formats[i].Format, nil
		}
	}
	return 0, fmt.Errorf("parse pixel format %q (want one of %s): %w", name, FormatNames(), ErrFormat)
}

// MaxDimension bounds width and height so that every size computed from
// them fits comfortably in int and uint32 on every platform.
const MaxDimension = 1 << 16

// MaxStride bounds the stride (4 bytes per pixel of the widest row).
const MaxStride = MaxDimension * 4

// Geometry is the shape of a frame in memory: Height rows of Stride bytes,
// of which the first Format.RowBytes(Width) carry pixels and the rest is
// padding. Every row starts on a byte boundary, packed formats included.
type Geometry struct {
	Width, Height, Stride int
	Format                Format
}

// Validate checks that the geometry is possible: a known format, positive
// dimensions no larger than MaxDimension, a width that is a multiple of
// the format's pixel group (even for YUV422), and a stride that holds a
// row and is at most MaxStride.
func (g Geometry) Validate() error {
	p := g.Format.info()
	if p == nil {
		return fmt.Errorf("validate geometry: %w: %v", ErrFormat, g.Format)
	}
	if g.Width <= 0 || g.Height <= 0 || g.Width > MaxDimension || g.Height > MaxDimension {
		return fmt.Errorf("validate geometry: %w: %dx%d (want width and height 1..%d)", ErrGeometry, g.Width, g.Height, MaxDimension)
	}
	if g.Width%p.WidthMultiple != 0 {
		return fmt.Errorf("validate geometry: %w: width %d of %v is not a multiple of %d", ErrGeometry, g.Width, g.Format, p.WidthMultiple)
	}
	if rb := g.Format.RowBytes(g.Width); g.Stride < rb || g.Stride > MaxStride {
		return fmt.Errorf("validate geometry: %w: stride %d for %d pixels of %v (%d bytes)",
			ErrGeometry, g.Stride, g.Width, g.Format, rb)
	}
	return nil
}

// RowBytes is the number of bytes of a row that carry pixels.
func (g Geometry) RowBytes() int { return g.Format.RowBytes(g.Width) }

// Size is the number of bytes the frame occupies: Stride*Height.
func (g Geometry) Size() int { return g.Stride * g.Height }

// Packed returns a geometry with the smallest stride for width and format.
func Packed(width, height int, f Format) Geometry {
	return Geometry{Width: width, Height: height, Stride: f.RowBytes(width), Format: f}
}
