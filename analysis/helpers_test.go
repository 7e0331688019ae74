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

var formats = []frame.Format{frame.Mono8, frame.Mono16, frame.RGB8}

// image8 builds a frame of format f from 8-bit values, one row per
// element of rows, with pad bytes of padding per row filled with padByte
// (so that reading padding would show). Mono16 stores v*257, RGB8 stores
// (v, v, v), whose luma is v. The buffer stops right after the last row's
// pixels: the last row's padding is absent.
func image8(t testing.TB, f frame.Format, rows [][]byte, pad int, padByte byte) ([]byte, frame.Geometry) {
	t.Helper()
	g := frame.Packed(len(rows[0]), len(rows), f)
	g.Stride += pad
	bpp := f.BytesPerPixel()
	buf := make([]byte, (g.Height-1)*g.Stride+g.RowBytes())
	for i := range buf {
		buf[i] = padByte
	}
	for y, row := range rows {
		if len(row) != g.Width {
			t.Fatalf("row %d has %d pixels, want %d", y, len(row), g.Width)
		}
		for x, v := range row {
			p := buf[y*g.Stride+x*bpp:]
			switch f {
			case frame.Mono8:
				p[0] = v
			case frame.Mono16:
				binary.LittleEndian.PutUint16(p, uint16(v)*257)
			case frame.RGB8:
				p[0], p[1], p[2] = v, v, v
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
	if g.Format == frame.RGB8 && s.count > 0 {
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
