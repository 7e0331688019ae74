package analysis_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/framering/framering/analysis"
	"github.com/framering/framering/frame"
)

// TestDefectsPattern: on generator frames every injected defect is found
// with exactly its bounding box, area and polarity, and nothing else.
// Small bands put band edges through the defects (and bands without
// foreground between them).
func TestDefectsPattern(t *testing.T) {
	for _, band := range []int{1 << 14, 1, 600} {
		t.Run(fmt.Sprint("band", band), func(t *testing.T) {
			defer analysis.SetBandBytes(band)()
			testDefectsPattern(t, band == 1<<14)
		})
	}
}

// testDefectsPattern runs every format (all of them with the default band
// size, one of each kind and packing with the small bands).
func testDefectsPattern(t *testing.T, all bool) {
	// Packed stride and padded; odd widths where the format allows them
	// (packed rows then end inside a byte).
	geoms := []frame.Geometry{frame.Packed(1024, 256, frame.RGB8)}
	for i, f := range formats {
		switch f {
		case frame.Mono8, frame.Mono16, frame.RGB8, frame.Mono10p, frame.BayerGB8, frame.YUV422_8_UYVY:
		default:
			if !all {
				continue
			}
		}
		w := 203
		if info, _ := f.Info(); info.WidthMultiple == 2 {
			w = 202
		}
		geoms = append(geoms, frame.Packed(160, 90, f), frame.Geometry{Width: w, Height: 77, Stride: f.RowBytes(w) + 1 + i%13, Format: f})
	}
	o := analysis.DefaultOptions()
	o.Histogram = true
	for _, g := range geoms {
		a, err := analysis.New(o)
		if err != nil {
			t.Fatal(err)
		}
		gen, err := frame.NewGenerator(g, true)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, g.Size())
		var blobs []frame.Blob
		injected := 0
		for id := uint64(0); id < 15; id++ {
			if err := gen.Fill(buf, id); err != nil {
				t.Fatal(err)
			}
			r, err := a.Analyze(buf, g)
			if err != nil {
				t.Fatal(err)
			}
			blobs = frame.Defects(blobs[:0], g, id)
			injected += len(blobs)
			if r.DefectCount != len(blobs) || len(r.Defects) != len(blobs) {
				t.Fatalf("%v id %d: found %+v, injected %+v", g, id, r.Defects, blobs)
			}
			for _, b := range blobs {
				if !hasBlob(r.Defects, b) {
					t.Fatalf("%v id %d: injected %+v not in %+v", g, id, b, r.Defects)
				}
			}
			if id < 3 {
				checkAgainstRef(t, r, buf, g, o)
			}
		}
		if injected < 10 {
			t.Fatalf("only %d defects injected", injected)
		}
	}
}

func hasBlob(ds []analysis.Defect, b frame.Blob) bool {
	c := float64(b.X) + float64(b.Size-1)/2
	for _, d := range ds {
		if d.X == b.X && d.Y == b.Y && d.W == b.Size && d.H == b.Size && d.Area == b.Size*b.Size &&
			d.Bright == b.Bright && d.CX == c && d.CY == float64(b.Y)+float64(b.Size-1)/2 {
			return true
		}
	}
	return false
}

// TestStampWithoutSkip: the stamp holds dark bytes (the format code has
// zero bytes), so without SkipStamp it shows up as defects in row 0.
func TestStampWithoutSkip(t *testing.T) {
	g := frame.Packed(160, 90, frame.Mono8)
	buf := pattern(t, g, 3) // 3 mod 3 = 0: no injected defects
	o := analysis.DefaultOptions()
	o.SkipStamp = false
	r := analyze(t, o, buf, g)
	if r.DefectCount == 0 {
		t.Fatal("stamp not detected without SkipStamp")
	}
	for _, d := range r.Defects {
		if d.Y != 0 || d.H != 1 || d.X+d.W > frame.StampSize {
			t.Fatalf("defect outside the stamp: %+v", d)
		}
	}
	checkAgainstRef(t, r, buf, g, o)
	o.SkipStamp = true
	if r := analyze(t, o, buf, g); r.DefectCount != 0 {
		t.Fatalf("with SkipStamp: %+v", r.Defects)
	}
}

type shapeCase struct {
	name string
	pic  string
	want []analysis.Defect // nil: only compare with the reference
}

var shapes = []shapeCase{
	{name: "empty", pic: `
........
........
........`, want: []analysis.Defect{}},
	{name: "full", pic: `
##########
##########
##########
##########`, want: []analysis.Defect{{X: 0, Y: 0, W: 10, H: 4, Area: 40, CX: 4.5, CY: 1.5, Bright: true}}},
	{name: "full-dark", pic: `
ooo
ooo`, want: []analysis.Defect{{X: 0, Y: 0, W: 3, H: 2, Area: 6, CX: 1, CY: 0.5}}},
	{name: "single-pixel", pic: `#`, want: []analysis.Defect{{W: 1, H: 1, Area: 1, Bright: true}}},
	{name: "u-shape", pic: `
#........#
#........#
#........#
##########`, want: []analysis.Defect{{X: 0, Y: 0, W: 10, H: 4, Area: 16, CX: 4.5, CY: 2.25, Bright: true}}},
	{name: "n-shape", pic: `
##########
#........#
#........#`},
	{name: "w-shape", pic: `
#...#...#...#
#...#...#...#
#.#.#.#.#.#.#
###.###.###.#
..#.....#...#
..#########.#
............#
#############`},
	{name: "spiral", pic: spiral(17)},
	{name: "spiral-31", pic: spiral(31)},
	{name: "diagonal", pic: `
#.......
.#......
..#.....
...#....
....#...`, want: []analysis.Defect{{X: 0, Y: 0, W: 5, H: 5, Area: 5, CX: 2, CY: 2, Bright: true}}},
	{name: "anti-diagonal", pic: `
....#
...#.
..#..
.#...
#....`, want: []analysis.Defect{{X: 0, Y: 0, W: 5, H: 5, Area: 5, CX: 2, CY: 2, Bright: true}}},
	{name: "x-shape", pic: `
#...#
.#.#.
..#..
.#.#.
#...#`},
	{name: "checkerboard", pic: `
#.#.#.#.#.#
.#.#.#.#.#.
#.#.#.#.#.#
.#.#.#.#.#.`, want: []analysis.Defect{{X: 0, Y: 0, W: 11, H: 4, Area: 22, CX: 5, CY: 32.0 / 22, Bright: true}}},
	{name: "not-4-connected-gap", pic: `
##..##
##..##
......
##..##`},
	{name: "borders", pic: `
#..........#
............
.....##.....
............
#..........#`, want: []analysis.Defect{
		{X: 0, Y: 0, W: 1, H: 1, Area: 1, CX: 0, CY: 0, Bright: true},
		{X: 11, Y: 0, W: 1, H: 1, Area: 1, CX: 11, CY: 0, Bright: true},
		{X: 5, Y: 2, W: 2, H: 1, Area: 2, CX: 5.5, CY: 2, Bright: true},
		{X: 0, Y: 4, W: 1, H: 1, Area: 1, CX: 0, CY: 4, Bright: true},
		{X: 11, Y: 4, W: 1, H: 1, Area: 1, CX: 11, CY: 4, Bright: true},
	}},
	{name: "bright-touches-dark", pic: `
###ooo
###ooo
ooo###`, want: []analysis.Defect{
		// The diagonals cross: with 8-connectivity both polarities
		// connect through them.
		{X: 0, Y: 0, W: 6, H: 3, Area: 9, CX: 2, CY: 1, Bright: true},
		{X: 0, Y: 0, W: 6, H: 3, Area: 9, CX: 3, CY: 1, Bright: false},
	}},
	{name: "comb", pic: `
#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#
#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#
#################################################`},
	{name: "inverted-comb", pic: `
#################################################
#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#
#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#.#`},
	{name: "staircase-merge", pic: `
#.......#.......#
#......#.#.....#.
#.....#...#...#..
#....#.....#.#...
#...#.......#....
#..#.............
#.#..............
##...............`},
	{name: "rings", pic: `
#####.ooooo
#...#.o...o
#.#.#.o.#.o
#...#.o...o
#####.ooooo`},
	{name: "long-rows", pic: `
.##########################################.#####
##########################################.######
................................................#`},
}

// TestDefectShapes runs hand-made shapes that need label merging,
// diagonal-only connectivity, border contact, full and empty frames,
// in all formats and with padding.
func TestDefectShapes(t *testing.T) {
	for _, band := range []int{1 << 14, 1, 20} {
		t.Run(fmt.Sprint("band", band), func(t *testing.T) {
			defer analysis.SetBandBytes(band)()
			testDefectShapes(t)
		})
	}
}

func testDefectShapes(t *testing.T) {
	o := analysis.Options{Bright: true, Hi: 200, Dark: true, Lo: 10}
	for _, sc := range shapes {
		for _, f := range formats {
			for _, pad := range []int{0, 7} {
				t.Run(fmt.Sprintf("%s/%v/pad%d", sc.name, f, pad), func(t *testing.T) {
					buf, g := image8(t, f, art(sc.pic), pad, 0xFF)
					r := analyze(t, o, buf, g)
					checkAgainstRef(t, r, buf, g, o)
					if sc.want != nil && !equalDefects(r.Defects, sc.want) {
						t.Fatalf("got %+v\nwant %+v", r.Defects, sc.want)
					}
					if strings.HasPrefix(sc.name, "spiral") || strings.Contains(sc.name, "comb") || sc.name == "staircase-merge" {
						if r.DefectCount != 1 {
							t.Fatalf("%d blobs, want 1: %+v", r.DefectCount, r.Defects)
						}
					}
				})
			}
		}
	}
}

func equalDefects(a, b []analysis.Defect) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestPolarityOptions: only the enabled polarity is reported, thresholds
// are inclusive, and thresholds of n-bit samples are Expand8(t, n): 257
// times for 16 bits.
func TestPolarityOptions(t *testing.T) {
	rows := [][]byte{{199, 200, 201, 11, 10, 9, 100}}
	for _, f := range formats {
		buf, g := image8(t, f, rows, 0, 0)
		r := analyze(t, analysis.Options{Bright: true, Hi: 200}, buf, g)
		if r.DefectCount != 1 || r.Defects[0].X != 1 || r.Defects[0].W != 2 || !r.Defects[0].Bright {
			t.Fatalf("%v bright: %+v", f, r.Defects)
		}
		r = analyze(t, analysis.Options{Dark: true, Lo: 10}, buf, g)
		if r.DefectCount != 1 || r.Defects[0].X != 4 || r.Defects[0].W != 2 || r.Defects[0].Bright {
			t.Fatalf("%v dark: %+v", f, r.Defects)
		}
	}
	// Mono16 just below and at 200*257.
	g := frame.Packed(3, 1, frame.Mono16)
	vals := []uint16{200*257 - 1, 200 * 257, 10*257 + 1}
	buf := make([]byte, 6)
	for i, v := range vals {
		buf[2*i], buf[2*i+1] = byte(v), byte(v>>8)
	}
	o := analysis.Options{Bright: true, Hi: 200, Dark: true, Lo: 10}
	r := analyze(t, o, buf, g)
	if r.DefectCount != 1 || r.Defects[0].X != 1 || r.Defects[0].Area != 1 {
		t.Fatalf("mono16 thresholds: %+v", r.Defects)
	}
	checkAgainstRef(t, r, buf, g, o)
}

// TestMinAreaAndTruncation: small blobs are dropped; the list is capped
// at MaxDefects while DefectCount counts them all.
func TestMinAreaAndTruncation(t *testing.T) {
	pic := `
#.##.###.####
.............
o.oo.ooo.oooo`
	buf, g := image8(t, frame.Mono8, art(pic), 0, 0)
	o := analysis.Options{Bright: true, Hi: 200, Dark: true, Lo: 10, MinArea: 3}
	r := analyze(t, o, buf, g)
	checkAgainstRef(t, r, buf, g, o)
	if r.DefectCount != 4 || r.Truncated {
		t.Fatalf("min area 3: %+v", r)
	}
	o.MaxDefects = 3
	r = analyze(t, o, buf, g)
	checkAgainstRef(t, r, buf, g, o)
	if r.DefectCount != 4 || len(r.Defects) != 3 || !r.Truncated {
		t.Fatalf("max defects 3: %+v", r)
	}
}

// TestIgnoreRect: an ignore rectangle removes pixels from blobs and may
// split one blob into two.
func TestIgnoreRect(t *testing.T) {
	pic := `
..........
.########.
.########.
..........`
	for _, f := range formats {
		buf, g := image8(t, f, art(pic), 3, 0xFF)
		o := analysis.Options{Bright: true, Hi: 200, Ignore: analysis.Rect{X: 4, Y: 0, W: 2, H: 100}}
		r := analyze(t, o, buf, g)
		checkAgainstRef(t, r, buf, g, o)
		if r.DefectCount != 2 || r.Defects[0].Area != 6 || r.Defects[1].X != 6 {
			t.Fatalf("%v: %+v", f, r.Defects)
		}
	}
}

// TestOverflow: more runs than MaxRuns abandons labeling but keeps stats.
func TestOverflow(t *testing.T) {
	buf, g := image8(t, frame.Mono8, art(`
#.#.#.#.#.#
.#.#.#.#.#.
#.#.#.#.#.#
.#.#.#.#.#.`), 0, 0) // 22 runs
	o := analysis.Options{Bright: true, Hi: 200, MaxRuns: 10, Histogram: true}
	a, err := analysis.New(o)
	if err != nil {
		t.Fatal(err)
	}
	r, err := a.Analyze(buf, g)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Overflow || r.DefectCount != 0 || len(r.Defects) != 0 || r.Stats.Count != 44 {
		t.Fatalf("%+v", r)
	}
	// The next, smaller frame labels normally.
	buf, g = image8(t, frame.Mono8, art("#..#"), 0, 0)
	r, err = a.Analyze(buf, g)
	if err != nil || r.Overflow || r.DefectCount != 2 {
		t.Fatalf("%+v %v", r, err)
	}
}

// spiral draws a single square spiral path of width 1 on an n×n grid, with
// one pixel of gap between its turns: one blob whose arms a top-down scan
// meets as separate runs and must merge.
func spiral(n int) string {
	grid := make([][]byte, n)
	for i := range grid {
		grid[i] = []byte(strings.Repeat(".", n))
	}
	x, y := 0, 0
	grid[0][0] = '#'
	dirs := [4][2]int{{1, 0}, {0, 1}, {-1, 0}, {0, -1}}
	lengths := []int{n - 1, n - 1, n - 1}
	for l := n - 3; l > 0; l -= 2 {
		lengths = append(lengths, l, l)
	}
	for i, l := range lengths {
		d := dirs[i%4]
		for k := 0; k < l; k++ {
			x, y = x+d[0], y+d[1]
			grid[y][x] = '#'
		}
	}
	var b strings.Builder
	for _, row := range grid {
		b.Write(row)
		b.WriteByte('\n')
	}
	return b.String()
}

// TestWideRuns: runs that start, end or stay open at 64-pixel chunk
// boundaries, and that cross several chunks, in rows of several chunks.
func TestWideRuns(t *testing.T) {
	const w = 260
	edges := [][2]int{{0, 64}, {64, 128}, {127, 129}, {63, 65}, {0, w}, {1, 63}, {65, 191}, {192, 256}, {255, w}, {130, 131}}
	var rows [][]byte
	for i, e := range edges {
		row := make([]byte, w)
		for x := range row {
			row[x] = 100
			if x >= e[0] && x < e[1] {
				row[x] = 255
				if i%3 == 2 {
					row[x] = 0
				}
			}
		}
		rows = append(rows, row)
		if i%4 == 3 {
			rows = append(rows, make([]byte, w)) // a full dark row
			for x := range rows[len(rows)-1] {
				rows[len(rows)-1][x] = 100
			}
		}
	}
	// Alternating single pixels across a chunk edge.
	alt := make([]byte, w)
	for x := range alt {
		alt[x] = []byte{255, 100, 0, 100}[x%4]
	}
	rows = append(rows, alt)
	o := analysis.Options{Bright: true, Hi: 200, Dark: true, Lo: 10, Histogram: true}
	for _, f := range formats {
		for _, pad := range []int{0, 5} {
			for _, ign := range []analysis.Rect{{}, {X: 60, Y: 0, W: 7, H: 100}, {X: 100, Y: 3, W: 200, H: 2}} {
				o.Ignore = ign
				buf, g := image8(t, f, rows, pad, 0xFF)
				checkAgainstRef(t, analyze(t, o, buf, g), buf, g, o)
			}
		}
	}
}

// TestMaxWidth: runs reaching the last column of a frame of the largest
// width, whose coordinates are stored in 16 bits.
func TestMaxWidth(t *testing.T) {
	const w = frame.MaxDimension
	rows := make([][]byte, 4)
	for y := range rows {
		rows[y] = make([]byte, w)
		for x := range rows[y] {
			rows[y][x] = 100
		}
	}
	for x := w - 70; x < w; x++ {
		rows[1][x] = 255
	}
	rows[2][w-1] = 255
	rows[3][0], rows[3][w-1] = 0, 0
	for x := 0; x < w; x++ {
		rows[0][x] = byte(255 * (x % 2)) // alternating bright and dark
	}
	o := analysis.Options{Bright: true, Hi: 200, Dark: true, Lo: 10}
	buf, g := image8(t, frame.Mono8, rows, 0, 0)
	r := analyze(t, o, buf, g)
	checkAgainstRef(t, r, buf, g, o)
	if r.DefectCount < 3 {
		t.Fatalf("%d defects", r.DefectCount)
	}
}
