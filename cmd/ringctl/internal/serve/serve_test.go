package serve

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/framering/framering/archive"
	"github.com/framering/framering/frame"
	"github.com/framering/framering/internal/testmain"
	"github.com/framering/framering/loss"
	"github.com/framering/framering/ringbuf"
)

func TestMain(m *testing.M) { os.Exit(testmain.Run(m, "", nil)) }

// testRing is an in-process ring that publishes the test pattern.
type testRing struct {
	t   testing.TB
	p   *ringbuf.Producer
	gen *frame.Generator
	g   frame.Geometry
	id  uint64
}

func newTestRing(t testing.TB, name string, g frame.Geometry) *testRing {
	t.Helper()
	p, err := ringbuf.Create(ringbuf.Config{Name: name, Slots: 6, SlotSize: g.Size()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	gen, err := frame.NewGenerator(g, true)
	if err != nil {
		t.Fatal(err)
	}
	return &testRing{t: t, p: p, gen: gen, g: g}
}

func (r *testRing) publish(n int) uint64 {
	r.t.Helper()
	var seq uint64
	for range n {
		s, err := r.p.Acquire()
		if err != nil {
			r.t.Fatal(err)
		}
		r.id++
		if err := r.gen.Fill(s.Bytes()[:r.g.Size()], r.id); err != nil {
			r.t.Fatal(err)
		}
		seq, err = r.p.Publish(s, ringbuf.Meta{FrameID: r.id, Width: uint32(r.g.Width), Height: uint32(r.g.Height),
			Stride: uint32(r.g.Stride), Format: r.g.Format, Length: uint64(r.g.Size())})
		if err != nil {
			r.t.Fatal(err)
		}
	}
	return seq
}

func newServer(t *testing.T, cfg Config) (*Server, *httptest.Server) {
	t.Helper()
	s := New(cfg)
	t.Cleanup(func() { s.Close() })
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	s.Sample(context.Background())
	return s, hs
}

func get(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// Bad requests get clear errors and never reach outside the runtime
// directory: an invalid name is 400, a ring the server does not see 404.
func TestBadRequests(t *testing.T) {
	newTestRing(t, "cam", frame.Packed(64, 32, frame.Mono8)).publish(1)
	_, hs := newServer(t, Config{})
	for _, tc := range []struct {
		path string
		code int
	}{
		{"/api/rings/cam", 200},
		{"/api/rings/cam/frame", 200},
		{"/api/rings/nosuch", 404},
		{"/api/rings/nosuch/frame", 404},
		{"/api/rings/..%2F..%2Fetc%2Fpasswd", 400},
		{"/api/rings/..%2F..%2Fetc%2Fpasswd/frame", 400},
		{"/api/rings/.cam", 400},
		{"/api/rings/-cam/frame", 400},
		{"/api/rings/" + strings.Repeat("a", 65), 400},
		{"/api/rings/cam%00x", 400},
		{"/api/rings/cam/frame?max=3", 400},
		{"/api/rings/cam/frame?max=x", 400},
		{"/api/rings/cam/frame?format=gif", 400},
		{"/static/../../go.mod", 404},
		{"/nothing", 404},
	} {
		resp, body := get(t, hs.URL+tc.path)
		if resp.StatusCode != tc.code {
			t.Errorf("GET %s: %d, want %d: %s", tc.path, resp.StatusCode, tc.code, body)
		}
	}
	resp, err := http.Post(hs.URL+"/api/rings/cam", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", resp.StatusCode)
	}
}

// The page, its script and style are served from the binary.
func TestStaticFiles(t *testing.T) {
	_, hs := newServer(t, Config{})
	for path, want := range map[string]string{"/": "<title>framering</title>", "/static/app.js": "refreshFrame",
		"/static/style.css": ".spark"} {
		resp, body := get(t, hs.URL+path)
		if resp.StatusCode != 200 || !bytes.Contains(body, []byte(want)) {
			t.Errorf("GET %s: %d, lacks %q", path, resp.StatusCode, want)
		}
		if resp.Header.Get("Content-Security-Policy") == "" {
			t.Errorf("GET %s: no Content-Security-Policy", path)
		}
	}
}

// The frame endpoint shows the newest frame, downscaled, and follows the ring.
func TestFrameEndpoint(t *testing.T) {
	r := newTestRing(t, "cam", frame.Packed(640, 480, frame.Mono8))
	r.publish(3)
	_, hs := newServer(t, Config{})
	frameAt := func() (string, image.Image) {
		resp, body := get(t, hs.URL+"/api/rings/cam/frame?format=png&max=160")
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/png" {
			t.Fatalf("frame: %d %s", resp.StatusCode, body)
		}
		img, err := png.Decode(bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if resp.Header.Get("X-Frame-Width") != "640" || resp.Header.Get("X-Frame-Format") != "Mono8" {
			t.Fatalf("headers %v", resp.Header)
		}
		return resp.Header.Get("X-Frame-Seq"), img
	}
	seq, img := frameAt()
	if seq != "3" || img.Bounds().Dx() != 160 || img.Bounds().Dy() != 120 {
		t.Fatalf("seq %s size %v", seq, img.Bounds())
	}
	r.publish(1)
	seq2, img2 := frameAt()
	if seq2 != "4" {
		t.Fatalf("seq after a publish %s", seq2)
	}
	if bytes.Equal(img.(*image.Gray).Pix, img2.(*image.Gray).Pix) {
		t.Fatal("the picture did not change with the frame")
	}
	resp, body := get(t, hs.URL+"/api/rings/cam/frame")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/jpeg" || len(body) == 0 {
		t.Fatalf("jpeg frame: %d %v", resp.StatusCode, resp.Header)
	}
}

// Every format of frame's table renders as the archive's export converts
// it: the same pixels at full size (8 bits), and Bayer cells in color.
func TestRenderEveryFormat(t *testing.T) {
	var rend renderer
	for _, f := range frame.Formats() {
		t.Run(f.String(), func(t *testing.T) {
			g := frame.Packed(64, 32, f)
			g.Stride += 3 // padding must be skipped
			gen, err := frame.NewGenerator(g, true)
			if err != nil {
				t.Fatal(err)
			}
			raw := make([]byte, g.Size())
			if err := gen.Fill(raw, 7); err != nil {
				t.Fatal(err)
			}
			m := ringbuf.Meta{Seq: 1, Width: uint32(g.Width), Height: uint32(g.Height), Stride: uint32(g.Stride), Format: f}
			got, err := rend.render(m, raw, 64, false)
			if err != nil {
				t.Fatal(err)
			}
			want, err := archive.FrameImage(archive.Meta{Width: g.Width, Height: g.Height, Stride: g.Stride, Format: f}, raw)
			if err != nil {
				t.Fatal(err)
			}
			info, _ := f.Info()
			if info.Kind == frame.KindBayer {
				checkBayer(t, info, got, want)
				return
			}
			if got.Bounds() != want.Bounds() {
				t.Fatalf("bounds %v, want %v", got.Bounds(), want.Bounds())
			}
			for y := 0; y < g.Height; y++ {
				for x := 0; x < g.Width; x++ {
					gr, gg, gb, _ := got.At(x, y).RGBA()
					wr, wg, wb, _ := want.At(x, y).RGBA()
					if gr>>8 != wr>>8 || gg>>8 != wg>>8 || gb>>8 != wb>>8 {
						t.Fatalf("pixel (%d,%d): %v, want %v", x, y, got.At(x, y), want.At(x, y))
					}
				}
			}
		})
	}
}

// checkBayer: each output pixel is its 2x2 cell in color.
func checkBayer(t *testing.T, info frame.FormatInfo, got, mosaic image.Image) {
	t.Helper()
	b := mosaic.Bounds()
	if got.Bounds().Dx() != b.Dx()/2 || got.Bounds().Dy() != b.Dy()/2 {
		t.Fatalf("bounds %v for a %v mosaic", got.Bounds(), b)
	}
	for y := 0; y < b.Dy()/2; y++ {
		for x := 0; x < b.Dx()/2; x++ {
			var sum [3]int
			var n [3]int
			for k := range 4 {
				v := color.Gray16Model.Convert(mosaic.At(2*x+k%2, 2*y+k/2)).(color.Gray16).Y >> 8
				sum[info.CFA[k]] += int(v)
				n[info.CFA[k]]++
			}
			c := got.At(x, y).(color.RGBA)
			want := color.RGBA{uint8(sum[0] / n[0]), uint8(sum[1] / n[1]), uint8(sum[2] / n[2]), 255}
			if c != want {
				t.Fatalf("cell (%d,%d): %v, want %v", x, y, c, want)
			}
		}
	}
}

// A frame whose bytes do not hold its geometry, or whose format is
// unknown, is an error, never a panic.
func TestRenderRefusesBadFrames(t *testing.T) {
	var rend renderer
	for _, m := range []ringbuf.Meta{
		{Width: 64, Height: 32, Stride: 64, Format: frame.Mono8},    // 2048 bytes needed
		{Width: 64, Height: 32, Stride: 10, Format: frame.Mono8},    // stride too small
		{Width: 64, Height: 32, Stride: 64, Format: 0x12345678},     // unknown format
		{Width: 0, Height: 32, Stride: 64, Format: frame.Mono8},     // no width
		{Width: 63, Height: 2, Stride: 126, Format: frame.YUV422_8}, // odd 4:2:2 width
	} {
		if _, err := rend.render(m, make([]byte, 100), 64, false); err == nil {
			t.Errorf("%+v rendered", m)
		}
	}
	// Hostile bytes with a valid geometry: any picture, no panic.
	for _, f := range frame.Formats() {
		g := frame.Packed(6, 4, f)
		raw := bytes.Repeat([]byte{0xFF}, g.Size())
		m := ringbuf.Meta{Width: 6, Height: 4, Stride: uint32(g.Stride), Format: f}
		if _, err := rend.render(m, raw, 16, true); err != nil {
			t.Errorf("%v: %v", f, err)
		}
	}
}

// Levels stretch a dim Mono16 frame to the full range.
func TestRenderLevels(t *testing.T) {
	g := frame.Packed(16, 2, frame.Mono16)
	raw := make([]byte, g.Size())
	for i := 0; i < 32; i++ {
		binary.LittleEndian.PutUint16(raw[2*i:], uint16(1000+100*i)) // a 12-bit-ish scene in 16 bits
	}
	var rend renderer
	img, err := rend.render(ringbuf.Meta{Width: 16, Height: 2, Stride: uint32(g.Stride), Format: frame.Mono16}, raw, 16, true)
	if err != nil {
		t.Fatal(err)
	}
	p := img.(*image.Gray).Pix
	if p[0] != 0 || p[len(p)-1] != 255 {
		t.Fatalf("stretched range %d..%d", p[0], p[len(p)-1])
	}
}

// /metrics passes promtool and says what the ring says.
func TestMetricsPromtool(t *testing.T) {
	r := newTestRing(t, "cam", frame.Packed(64, 32, frame.Mono8))
	r.publish(5)
	r.p.RecordDrops(loss.Underrun, 2)
	r.publish(1)
	_, hs := newServer(t, Config{})
	resp, body := get(t, hs.URL+"/metrics")
	if resp.StatusCode != 200 {
		t.Fatalf("metrics: %d", resp.StatusCode)
	}
	for _, want := range []string{
		`framering_frames_published_total{ring="cam"} 6`,
		`framering_frames_dropped_total{cause="underrun",ring="cam"} 2`,
		`framering_frames_dropped_total{cause="blocked",ring="cam"} 0`,
		`framering_ring_up{ring="cam"} 1`,
		`framering_source_state{ring="cam",state="acquiring"} 1`,
		`framering_slots{ring="cam",state="published"} `,
	} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("metrics lack %q", want)
		}
	}
	promtool(t, body)
}

func promtool(t *testing.T, body []byte) {
	t.Helper()
	cmd := exec.Command("promtool", "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

// fixedResults is a Results with one result per ring: the overlay's
// contract without the analyzer's transport.
type fixedResults struct {
	mu  sync.Mutex
	res map[string]Result
}

func (f *fixedResults) Latest(ring string) (Result, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.res[ring]
	return r, ok
}

func (f *fixedResults) Lookup(ring string, epoch, seq uint64) (Result, bool) {
	r, ok := f.Latest(ring)
	return r, ok && r.Epoch == epoch && r.Seq == seq
}

// With an overlay source, the frame shown is the newest analyzed one,
// with its boxes; one the ring no longer has gives way to the newest.
func TestFrameOverlay(t *testing.T) {
	r := newTestRing(t, "cam", frame.Packed(64, 32, frame.Mono8))
	r.publish(4)
	res := &fixedResults{res: map[string]Result{"cam": {Epoch: r.p.Epoch(), Seq: 3, Boxes: []Box{{X: 1, Y: 2, W: 3, H: 4, Bright: true}}}}}
	_, hs := newServer(t, Config{Results: res})
	resp, _ := get(t, hs.URL+"/api/rings/cam/frame")
	var d Result
	if err := json.Unmarshal([]byte(resp.Header.Get("X-Frame-Defects")), &d); err != nil {
		t.Fatalf("defects header %q: %v", resp.Header.Get("X-Frame-Defects"), err)
	}
	if resp.Header.Get("X-Frame-Seq") != "3" || d.Seq != 3 || len(d.Boxes) != 1 || d.Boxes[0] != (Box{1, 2, 3, 4, true}) {
		t.Fatalf("overlay: seq %s %+v", resp.Header.Get("X-Frame-Seq"), d)
	}
	r.publish(10) // frame 3 is overwritten
	resp, _ = get(t, hs.URL+"/api/rings/cam/frame")
	if resp.Header.Get("X-Frame-Seq") != "14" || resp.Header.Get("X-Frame-Defects") != "null" {
		t.Fatalf("after the analyzed frame went: seq %s defects %s", resp.Header.Get("X-Frame-Seq"), resp.Header.Get("X-Frame-Defects"))
	}
}

// Scrapes, pages and frames while the server samples and the producer
// publishes, restarts and goes: no race, no failure but 404 for a ring
// that went and 503 for one with no frame.
func TestConcurrentRequests(t *testing.T) {
	r := newTestRing(t, "cam", frame.Packed(128, 64, frame.BayerGR8))
	r.publish(2)
	s, hs := newServer(t, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			s.Sample(ctx)
		}
	}()
	for _, path := range []string{"/metrics", "/api/rings", "/api/rings/cam", "/api/rings/cam/frame"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				resp, err := http.Get(hs.URL + path)
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if c := resp.StatusCode; c != 200 && c != 404 && c != 503 {
					t.Errorf("GET %s: %d", path, c)
					return
				}
			}
		}()
	}
	for range 3 {
		r.publish(50)
		r.p.Close()
		p, err := ringbuf.Create(ringbuf.Config{Name: "cam", Slots: 6, SlotSize: r.g.Size()})
		if err != nil {
			t.Fatal(err)
		}
		r.p = p
	}
	r.publish(50)
	cancel()
	wg.Wait()
	r.p.Close()
}
