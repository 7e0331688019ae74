package analysis_test

import (
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/framering/framering/analysis"
	"github.com/framering/framering/frame"
)

// TestGeometryErrors: impossible geometries and short buffers are refused
// with ErrGeometry (and the frame sentinel), and no result.
func TestGeometryErrors(t *testing.T) {
	a, err := analysis.New(analysis.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	good := frame.Geometry{Width: 10, Height: 4, Stride: 24, Format: frame.Mono16}
	cases := []struct {
		name string
		g    frame.Geometry
		n    int
		also error
	}{
		{"unknown format", frame.Geometry{Width: 10, Height: 4, Stride: 12, Format: 7}, 100, frame.ErrFormat},
		{"zero width", frame.Geometry{Width: 0, Height: 4, Stride: 12, Format: frame.Mono8}, 100, frame.ErrGeometry},
		{"negative height", frame.Geometry{Width: 4, Height: -1, Stride: 12, Format: frame.Mono8}, 100, frame.ErrGeometry},
		{"stride too small", frame.Geometry{Width: 10, Height: 4, Stride: 19, Format: frame.Mono16}, 100, frame.ErrGeometry},
		{"huge", frame.Geometry{Width: 1 << 20, Height: 4, Stride: 1 << 22, Format: frame.Mono8}, 100, frame.ErrGeometry},
		{"short by one", good, 3*24 + 20 - 1, nil},
		{"empty buffer", good, 0, nil},
	}
	for _, c := range cases {
		r, err := a.Analyze(make([]byte, c.n), c.g)
		if !errors.Is(err, analysis.ErrGeometry) || r != nil {
			t.Fatalf("%s: %v, %v", c.name, r, err)
		}
		if c.also != nil && !errors.Is(err, c.also) {
			t.Fatalf("%s: %v does not wrap %v", c.name, err, c.also)
		}
		if !errors.Is(err, frame.ErrGeometry) || !strings.HasPrefix(err.Error(), "analyze frame: check geometry: ") {
			t.Fatalf("%s: message %q", c.name, err)
		}
		t.Logf("%s: %v", c.name, err)
	}
	// Exactly enough: the last row's padding may be absent.
	if _, err := a.Analyze(make([]byte, 3*24+20), good); err != nil {
		t.Fatal(err)
	}
}

func TestOptionsErrors(t *testing.T) {
	bad := []analysis.Options{
		{MinArea: -1},
		{MaxDefects: -1},
		{MaxRuns: -1},
		{MaxRuns: 1<<30 + 1},
		{Ignore: analysis.Rect{W: -1, H: 3}},
		{Bright: true, Hi: 10, Dark: true, Lo: 10},
		{Bright: true, Hi: 10, Dark: true, Lo: 200},
	}
	for _, o := range bad {
		if a, err := analysis.New(o); !errors.Is(err, analysis.ErrOptions) || a != nil {
			t.Fatalf("%+v: %v", o, err)
		}
	}
	a, err := analysis.New(analysis.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.SetOptions(bad[0]); !errors.Is(err, analysis.ErrOptions) {
		t.Fatal(err)
	}
	// Disabled polarities may have any thresholds; Hi 0 makes every pixel bright.
	if _, err := analysis.New(analysis.Options{Bright: true, Hi: 0, Lo: 255}); err != nil {
		t.Fatal(err)
	}
	if got := a.Options().MaxDefects; got != analysis.DefaultMaxDefects {
		t.Fatalf("default max defects %d", got)
	}
}

// TestZeroAnalyzer: the zero Analyzer measures statistics.
func TestZeroAnalyzer(t *testing.T) {
	var a analysis.Analyzer
	buf, g := image8(t, frame.Mono8, art("#.o"), 0, 0)
	r, err := a.Analyze(buf, g)
	if err != nil || r.Stats.Count != 3 || r.Defects == nil {
		t.Fatalf("%+v %v", r, err)
	}
}

// TestJSON pins the JSON shape of a Result.
func TestJSON(t *testing.T) {
	buf, g := image8(t, frame.RGB8, art(`
.#.o
....`), 0, 0)
	r := analyze(t, analysis.Options{Bright: true, Hi: 200, Dark: true, Lo: 10}, buf, g)
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"format":"RGB8","width":4,"height":2,` +
		`"stats":{"count":8,"min":0,"max":255,"sum":855,"mean":106.875,"stddev":64.85259728800382,` +
		`"channels":{"r":106.875,"g":106.875,"b":106.875}},` +
		`"defect_count":2,"defects":[` +
		`{"x":1,"y":0,"w":1,"h":1,"area":1,"cx":1,"cy":0,"bright":true},` +
		`{"x":3,"y":0,"w":1,"h":1,"area":1,"cx":3,"cy":0,"bright":false}]}`
	if string(b) != want {
		t.Fatalf("JSON\n got %s\nwant %s", b, want)
	}
	// No defects: an empty array, not null; histogram present when asked.
	buf, g = image8(t, frame.Mono8, art("...."), 0, 0)
	r = analyze(t, analysis.Options{Histogram: true}, buf, g)
	b, _ = json.Marshal(r)
	if !strings.Contains(string(b), `"defects":[]`) || !strings.Contains(string(b), `"histogram":[0,`) ||
		strings.Contains(string(b), "channels") {
		t.Fatalf("JSON %s", b)
	}
	var back analysis.Result
	if err := json.Unmarshal(b, &back); err != nil || back.Stats != r.Stats || len(back.Histogram) != 256 {
		t.Fatalf("round trip: %+v %v", back, err)
	}
}

// TestResultValidity: the analyzer's Result is overwritten by the next
// Analyze; a copy made with CopyTo or Clone is not.
func TestResultValidity(t *testing.T) {
	a, err := analysis.New(analysis.Options{Bright: true, Hi: 200, Histogram: true})
	if err != nil {
		t.Fatal(err)
	}
	buf1, g1 := image8(t, frame.RGB8, art("#.#"), 0, 0)
	buf2, g2 := image8(t, frame.RGB8, art("...\n..#"), 0, 0)
	r1, err := a.Analyze(buf1, g1)
	if err != nil {
		t.Fatal(err)
	}
	var kept analysis.Result
	r1.CopyTo(&kept)
	clone := r1.Clone()
	r2, err := a.Analyze(buf2, g2)
	if err != nil {
		t.Fatal(err)
	}
	if r1 != r2 || r1.DefectCount != 1 {
		t.Fatal("the analyzer's Result is expected to be reused")
	}
	for _, c := range []*analysis.Result{&kept, clone} {
		if c.DefectCount != 2 || c.Defects[1].X != 2 || c.Histogram[255] != 2 || c.Stats.Count != 3 ||
			c.Stats.Channels == r2.Stats.Channels || c.Stats.Channels.R != (255*2+100)/3.0 {
			t.Fatalf("copy changed: %+v", c)
		}
	}
	// CopyTo into the same destination reuses its storage.
	r2.CopyTo(&kept)
	if kept.DefectCount != 1 || kept.Histogram[255] != 1 || kept.Stats.Channels == r2.Stats.Channels {
		t.Fatalf("%+v", kept)
	}
}

// TestConcurrentUse: overlapping calls never share the scratch; the loser
// gets ErrConcurrentUse. Run with -race.
func TestConcurrentUse(t *testing.T) {
	a, err := analysis.New(analysis.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	g := frame.Packed(256, 64, frame.Mono8)
	buf := pattern(t, g, 2)
	var wg sync.WaitGroup
	var mu sync.Mutex
	counts := map[string]int{}
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				_, err := a.Analyze(buf, g)
				key := "ok"
				if err != nil {
					if !errors.Is(err, analysis.ErrConcurrentUse) {
						t.Error(err)
						return
					}
					key = "busy"
				}
				mu.Lock()
				counts[key]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if counts["ok"] == 0 {
		t.Fatalf("%v", counts)
	}
	t.Logf("%v", counts)
}

// TestZeroAllocs: after warm-up, analyzing frames of every format (with
// defects, statistics and histogram) and copying the result out allocate
// nothing.
func TestZeroAllocs(t *testing.T) {
	o := analysis.DefaultOptions()
	o.Histogram = true
	for _, f := range formats {
		g := frame.Packed(300, 120, f)
		g.Stride += 8
		bufs := make([][]byte, 6)
		for i := range bufs {
			bufs[i] = pattern(t, g, uint64(i+1))
		}
		a, err := analysis.New(o)
		if err != nil {
			t.Fatal(err)
		}
		var dst analysis.Result
		i := 0
		run := func() {
			r, err := a.Analyze(bufs[i%len(bufs)], g)
			if err != nil {
				t.Fatal(err)
			}
			r.CopyTo(&dst)
			i++
		}
		for range bufs {
			run() // warm-up
		}
		if n := testing.AllocsPerRun(20, run); n != 0 {
			t.Fatalf("%v: %v allocations per frame", f, n)
		}
		if dst.DefectCount == 0 && i%3 != 0 {
			t.Fatalf("%v: no defects found", f)
		}
	}
}

// TestSetOptions: new options apply from the next frame on, on the same
// scratch.
func TestSetOptions(t *testing.T) {
	buf, g := image8(t, frame.Mono16, art(`
##..oo
##..oo`), 3, 0xFF)
	a, err := analysis.New(analysis.Options{Bright: true, Hi: 200})
	if err != nil {
		t.Fatal(err)
	}
	r, err := a.Analyze(buf, g)
	if err != nil || r.DefectCount != 1 || !r.Defects[0].Bright {
		t.Fatalf("%+v %v", r, err)
	}
	if err := a.SetOptions(analysis.Options{Dark: true, Lo: 10, MinArea: 4}); err != nil {
		t.Fatal(err)
	}
	r, err = a.Analyze(buf, g)
	if err != nil || r.DefectCount != 1 || r.Defects[0].Bright || r.Defects[0].X != 4 {
		t.Fatalf("%+v %v", r, err)
	}
	if err := a.SetOptions(analysis.Options{Dark: true, Lo: 10, MinArea: 5}); err != nil {
		t.Fatal(err)
	}
	if r, err = a.Analyze(buf, g); err != nil || r.DefectCount != 0 {
		t.Fatalf("%+v %v", r, err)
	}
}
