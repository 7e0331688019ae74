package analysis_test

import (
	"encoding/binary"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/framering/framering/analysis"
	"github.com/framering/framering/frame"
)

// formats is every format of the table.
var formats = frame.Formats()

// bits16 returns the significant bits of f's samples when the analyzer
// measures them as 16-bit values (Mono10/12/16, Mono10p/12p, Bayer16),
// else 0.
func bits16(f frame.Format) int {
	info, _ := f.Info()
	if (info.Kind == frame.KindMono || info.Kind == frame.KindBayer) && info.BitsPerPixel > 8 {
		return info.SampleBits
	}
	return 0
}

// measured is the value the analyzer measures for a pixel image8 wrote
// from the 8-bit value v.
func measured(f frame.Format, v uint8) uint64 {
	if n := bits16(f); n != 0 {
		return uint64(frame.Expand8(v, n))
	}
	return uint64(v)
}

// image8 builds a frame of format f from 8-bit values, one row per
// element of rows, with pad bytes of padding per row filled with padByte
// (so that reading padding would show). Mono and Bayer formats store
// Expand8(v, n) (v*257 for 16 bits), packed for the packed formats;
// RGB8 and BGR8 store (v, v, v), whose luma is v; YUV422 stores Y = v with
// U = 0 and V = 255 (chroma must not be measured). A YUV422 picture of odd
// width gets one more column of background (100), as 4:2:2 widths are
// even. The buffer stops right after the last row's pixels: the last
// row's padding is absent.
func image8(t testing.TB, f frame.Format, rows [][]byte, pad int, padByte byte) ([]byte, frame.Geometry) {
	t.Helper()
	info, _ := f.Info()
	w := len(rows[0])
	g := frame.Packed(w+w%info.WidthMultiple, len(rows), f)
	g.Stride += pad
	buf := make([]byte, (g.Height-1)*g.Stride+g.RowBytes())
	for i := range buf {
		buf[i] = padByte
	}
	tmp := make([]byte, 2*g.Width)
	for y, row := range rows {
		if len(row) != w {
			t.Fatalf("row %d has %d pixels, want %d", y, len(row), w)
		}
		if g.Width > w {
			row = append(append([]byte{}, row...), 100)
		}
		r := buf[y*g.Stride : y*g.Stride+g.RowBytes()]
		for x, v := range row {
			switch {
			case info.Packing != frame.Unpacked:
				binary.LittleEndian.PutUint16(tmp[2*x:], uint16(measured(f, v)))
			case info.Kind == frame.KindRGB:
				r[3*x], r[3*x+1], r[3*x+2] = v, v, v
			case info.Kind == frame.KindYUV422:
				yOff := info.Order[0]
				if x%2 == 1 {
					yOff = info.Order[2]
				}
				pair := r[x/2*4:]
				pair[info.Order[1]], pair[info.Order[3]] = 0, 255
				pair[yOff] = v
			case info.BitsPerPixel == 8:
				r[x] = v
			default:
				binary.LittleEndian.PutUint16(r[2*x:], uint16(measured(f, v)))
			}
		}
		if info.Packing != frame.Unpacked {
			if err := frame.Pack16(r, tmp, f, g.Width); err != nil {
				t.Fatal(err)
			}
		}
	}
	return buf, g
}

// art turns a picture into 8-bit rows: '#' is 255 (bright), 'o' is 0
// (dark), anything else is 100 (background).
func art(pic string) [][]byte {
	var rows [][]byte
	for _, line := range strings.Split(strings.TrimSpace(pic), "\n") {
		line = strings.TrimSpace(line)
		row := make([]byte, len(line))
		for i, c := range line {
			switch c {
			case '#':
				row[i] = 255
			case 'o':
				row[i] = 0
			default:
				row[i] = 100
			}
		}
		rows = append(rows, row)
	}
	return rows
}

// pattern returns frame id of geometry g, with defects.
func pattern(t testing.TB, g frame.Geometry, id uint64) []byte {
	t.Helper()
	gen, err := frame.NewGenerator(g, true)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, g.Size())
	if err := gen.Fill(buf, id); err != nil {
		t.Fatal(err)
	}
	return buf
}

func analyze(t testing.TB, o analysis.Options, buf []byte, g frame.Geometry) *analysis.Result {
	t.Helper()
	a, err := analysis.New(o)
	if err != nil {
		t.Fatal(err)
	}
	r, err := a.Analyze(buf, g)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// checkAgainstRef compares every field of r with the reference analysis.
func checkAgainstRef(t testing.TB, r *analysis.Result, buf []byte, g frame.Geometry, o analysis.Options) {
	t.Helper()
	im := decode(buf, g, o)
	s := im.stats()
	st := r.Stats
	if st.Count != s.count || st.Min != s.min || st.Max != s.max || st.Sum != s.sum {
		t.Fatalf("%v %+v: count/min/max/sum = %d/%d/%d/%d, want %d/%d/%d/%d",
			g.Format, g, st.Count, st.Min, st.Max, st.Sum, s.count, s.min, s.max, s.sum)
	}
	if st.Mean != s.mean || !near(st.StdDev, s.std) {
		t.Fatalf("%v: mean/stddev = %v/%v, want %v/%v", g.Format, st.Mean, st.StdDev, s.mean, s.std)
	}
	if info, _ := g.Format.Info(); info.Kind == frame.KindRGB && s.count > 0 {
		c := st.Channels
		if c == nil || c.R != s.cr || c.G != s.cg || c.B != s.cb {
			t.Fatalf("channels = %+v, want %v %v %v", c, s.cr, s.cg, s.cb)
		}
	} else if st.Channels != nil {
		t.Fatalf("%v: channels %+v", g.Format, st.Channels)
	}
	if o.Histogram {
		if !reflect.DeepEqual(r.Histogram, s.hist[:]) {
			t.Fatalf("%v: histogram\n got %v\nwant %v", g.Format, r.Histogram, s.hist)
		}
	} else if r.Histogram != nil {
		t.Fatalf("histogram reported without Options.Histogram")
	}
	n, want := im.want(o)
	if r.Overflow {
		t.Fatalf("unexpected overflow")
	}
	if r.DefectCount != n || !reflect.DeepEqual(r.Defects, want) || r.Truncated != (n > len(want)) {
		t.Fatalf("%v %+v: %d defects (truncated %v)\n got %+v\nwant %d: %+v",
			g.Format, o, r.DefectCount, r.Truncated, r.Defects, n, want)
	}
}

func near(a, b float64) bool {
	return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b))
}
