// Package serve is `ringctl serve`: one HTTP server that exposes every
// ring on the host to Prometheus (/metrics) and to people (a live web
// view at /), both from the one picture of a ring's state (package
// ringstat).
//
// It watches rings as an observer (ringstat.Host: one observer attachment
// per ring, no consumer table entry, no holds, nothing written), so
// neither a scrape nor a page can stall a producer or slow a consumer. A
// frame for the page is an observer's Peek: copied (downscaled) while the
// slot's generation is unchanged, thrown away and retried when it changed.
//
// Ownership: the Server owns its Host and the Host's attachments (closed
// when Serve returns); a rendered picture belongs to a pooled renderer
// until it is encoded into the response; nothing of shared memory outlives
// a Peek callback.
//
// Endpoints (GET only):
//
//	/metrics                   Prometheus text format, every ring
//	/                          the web view (embedded HTML, JS, CSS)
//	/api/rings                 the rings, JSON
//	/api/rings/NAME            one ring's report, history and overlay flag, JSON
//	/api/rings/NAME/frame      the newest frame, downscaled (JPEG; ?format=png,
//	                           ?max=PIXELS, ?levels=1), headers X-Frame-*
//
// A ring name that is not a valid name is 400, a ring the server does not
// see is 404; names never reach the file system except as a ring's socket
// name in the runtime directory (ringbuf.SocketPath validates them).
package serve

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/framering/framering/ringbuf"
	"github.com/framering/framering/ringstat"
)

//go:embed static
var static embed.FS

// DefaultListen is where ringctl serve listens unless told otherwise: the
// loopback interface only (exposing it is a decision, see README).
const DefaultListen = "localhost:9464"

// Config says how to serve.
type Config struct {
	// Listen is the address ("localhost:9464"; a bare ":PORT" means
	// localhost:PORT: listening beyond the host takes an explicit host).
	Listen string
	// Interval is how often the server looks for rings and records the
	// history the sparklines show (default 1s); History how much of it it
	// keeps (default 5m).
	Interval, History time.Duration
	// MaxSide is the default largest side of a frame picture (default 640).
	MaxSide int
	// Results is the defect overlay's source (nil: no overlay).
	Results Results
	Logger  *slog.Logger
}

// Server serves metrics and the web view of every ring on the host.
type Server struct {
	cfg  Config
	host *ringstat.Host
	reg  *prometheus.Registry
	mux  *http.ServeMux

	mu    sync.Mutex
	views map[string]*ringView

	renderers sync.Pool
}

// ringView is what the server keeps of one ring between requests: rates
// and the sparklines' history.
type ringView struct {
	mu    sync.Mutex
	rates ringstat.Rates
	hist  []point // ring buffer of cap histLen
	next  int
}

// point is one history sample. Up is false while the ring could not be read.
type point struct {
	T         int64 // Unix ms
	Up        bool
	Rate      float64
	DropRate  float64
	Published uint64
	Dropped   uint64
}

// rateWindow is the span of the rates the page and the history show.
const rateWindow = 2 * time.Second

// New returns a Server; Serve runs it, or Handler and Sample for tests.
func New(cfg Config) *Server {
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.History <= 0 {
		cfg.History = 5 * time.Minute
	}
	if cfg.MaxSide <= 0 {
		cfg.MaxSide = 640
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, host: ringstat.NewHost(cfg.Logger), reg: prometheus.NewRegistry(), views: map[string]*ringView{}}
	s.renderers.New = func() any { return new(renderer) }
	s.reg.MustRegister(&ringCollector{host: s.host, timeout: 5 * time.Second},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	sub, _ := fs.Sub(static, "static")
	m := http.NewServeMux()
	m.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{ErrorLog: slogAdapter{cfg.Logger}}))
	m.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(sub)))
	m.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		b, _ := fs.ReadFile(sub, "index.html")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(b)
	})
	m.HandleFunc("GET /api/rings", s.listRings)
	m.HandleFunc("GET /api/rings/{name}", s.ring)
	m.HandleFunc("GET /api/rings/{name}/frame", s.frame)
	s.mux = m
	return s
}

type slogAdapter struct{ log *slog.Logger }

func (a slogAdapter) Println(v ...any) { a.log.Warn("metrics: " + fmt.Sprint(v...)) }

// Handler returns the server's HTTP handler.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		// Everything the page needs comes from this server; frames are
		// shown from blob: URLs the script makes.
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' blob:; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-store")
		s.mux.ServeHTTP(w, r)
	})
}

// Sample looks for rings (attaching to new ones, forgetting vanished
// ones) and records a history point for each: one round of Serve's loop.
func (s *Server) Sample(ctx context.Context) {
	if err := s.host.Refresh(ctx); err != nil {
		s.cfg.Logger.Warn("look for rings", "err", err)
	}
	states := s.host.Snapshots(ctx)
	seen := map[string]bool{}
	histLen := int(s.cfg.History / s.cfg.Interval)
	for _, st := range states {
		seen[st.Name] = true
		v := s.view(st.Name)
		v.mu.Lock()
		p := point{T: time.Now().UnixMilli()}
		if up(st) {
			rep := v.rates.Report(st.Name, st.Socket, st.Snapshot, st.At)
			p.Up, p.Rate, p.DropRate, p.Published, p.Dropped = true, rep.Producer.Rate, rep.Drops.Rate, rep.Producer.Published, rep.Drops.Total
		} else {
			v.rates.Reset()
		}
		if len(v.hist) < histLen {
			v.hist = append(v.hist, p)
		} else {
			v.hist[v.next] = p
			v.next = (v.next + 1) % len(v.hist)
		}
		v.mu.Unlock()
	}
	s.mu.Lock()
	for n := range s.views {
		if !seen[n] {
			delete(s.views, n)
		}
	}
	s.mu.Unlock()
}

func up(st ringstat.RingState) bool {
	return st.Status == ringstat.StatusLive || st.Status == ringstat.StatusUnresponsive
}

func (s *Server) view(name string) *ringView {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.views[name]
	if v == nil {
		v = &ringView{rates: ringstat.Rates{Window: rateWindow}}
		s.views[name] = v
	}
	return v
}

// Close detaches from every ring.
func (s *Server) Close() error { return s.host.Close() }

// Serve listens on cfg.Listen and serves until ctx ends; ready, if not
// nil, receives the address it listens on.
func Serve(ctx context.Context, cfg Config, ready func(addr string)) error {
	addr := cfg.Listen
	if addr == "" {
		addr = DefaultListen
	}
	if host, port, err := net.SplitHostPort(addr); err == nil && host == "" {
		addr = net.JoinHostPort("localhost", port)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	s := New(cfg)
	defer s.Close()
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	s.Sample(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(s.cfg.Interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				s.Sample(ctx)
			}
		}
	}()
	context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	})
	s.cfg.Logger.Info("serving", "metrics", "http://"+ln.Addr().String()+"/metrics", "view", "http://"+ln.Addr().String()+"/")
	if ready != nil {
		ready(ln.Addr().String())
	}
	err = srv.Serve(ln)
	<-done
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("serve: %w", err)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.Encode(v)
}

// ringName returns the request's ring name, or answers 400 (not a valid
// name) or 404 (no such ring here).
func (s *Server) ringName(w http.ResponseWriter, r *http.Request) (string, bool) {
	name := r.PathValue("name")
	if _, err := ringbuf.SocketPath(name); err != nil {
		http.Error(w, "invalid ring name: want 1-64 of [A-Za-z0-9._-], not starting with . or -", http.StatusBadRequest)
		return "", false
	}
	for _, n := range s.host.Names() {
		if n == name {
			return name, true
		}
	}
	http.Error(w, fmt.Sprintf("no ring %q on this host", name), http.StatusNotFound)
	return "", false
}

// ringSummary is one ring in /api/rings.
type ringSummary struct {
	Name      string          `json:"name"`
	Status    string          `json:"status"`
	Error     string          `json:"error,omitempty"`
	Epoch     *ringstat.Epoch `json:"epoch,omitempty"`
	Pid       int             `json:"pid,omitempty"`
	State     string          `json:"state,omitempty"`
	Stalled   bool            `json:"stalled"`
	Published uint64          `json:"published"`
	Dropped   uint64          `json:"dropped"`
	Consumers int             `json:"consumers"`
}

func (s *Server) listRings(w http.ResponseWriter, r *http.Request) {
	out := []ringSummary{}
	for _, st := range s.host.Snapshots(r.Context()) {
		e := ringSummary{Name: st.Name, Status: st.Status}
		if st.Err != nil {
			e.Error = st.Err.Error()
		}
		if up(st) {
			rep := ringstat.Build(st.Name, st.Socket, st.Snapshot, nil, 0)
			ep := rep.Producer.Epoch
			e.Epoch, e.Pid, e.State, e.Stalled = &ep, rep.Producer.Pid, rep.Producer.State, rep.Producer.Stalled
			e.Published, e.Dropped, e.Consumers = rep.Producer.Published, rep.Drops.Total, len(rep.Consumers)
		}
		out = append(out, e)
	}
	writeJSON(w, out)
}

// ringDetail is /api/rings/NAME.
type ringDetail struct {
	Name    string           `json:"name"`
	Status  string           `json:"status"`
	Error   string           `json:"error,omitempty"`
	Report  *ringstat.Report `json:"report,omitempty"`
	History history          `json:"history"`
	Overlay bool             `json:"overlay"`
}

// history is the sparklines' data, oldest first; a point where the ring
// could not be read has Up false.
type history struct {
	IntervalMs int64     `json:"interval_ms"`
	T          []int64   `json:"t"`
	Up         []bool    `json:"up"`
	Rate       []float64 `json:"rate"`
	DropRate   []float64 `json:"drop_rate"`
}

func (s *Server) ring(w http.ResponseWriter, r *http.Request) {
	name, ok := s.ringName(w, r)
	if !ok {
		return
	}
	st, ok := s.host.Snapshot(r.Context(), name)
	if !ok {
		http.Error(w, fmt.Sprintf("no ring %q on this host", name), http.StatusNotFound)
		return
	}
	d := ringDetail{Name: name, Status: st.Status, Overlay: s.cfg.Results != nil,
		History: history{IntervalMs: s.cfg.Interval.Milliseconds(), T: []int64{}, Up: []bool{}, Rate: []float64{}, DropRate: []float64{}}}
	if st.Err != nil {
		d.Error = st.Err.Error()
	}
	v := s.view(name)
	v.mu.Lock()
	if up(st) {
		d.Report = v.rates.Report(name, st.Socket, st.Snapshot, st.At)
		d.Report.Unresponsive = st.Status == ringstat.StatusUnresponsive
	}
	n := len(v.hist)
	for i := range n {
		p := v.hist[(v.next+i)%n]
		d.History.T = append(d.History.T, p.T)
		d.History.Up = append(d.History.Up, p.Up)
		d.History.Rate = append(d.History.Rate, p.Rate)
		d.History.DropRate = append(d.History.DropRate, p.DropRate)
	}
	v.mu.Unlock()
	writeJSON(w, d)
}

// frame answers the newest frame (or, with an overlay source, the newest
// frame the analyzer has a result for, while the ring still has it) as a
// picture. Headers: X-Frame-Seq, X-Frame-Epoch, X-Frame-Id, X-Frame-Width,
// X-Frame-Height (the frame's own size), X-Frame-Format, and with an
// overlay X-Frame-Defects (JSON: the result for exactly that frame, or
// null).
func (s *Server) frame(w http.ResponseWriter, r *http.Request) {
	name, ok := s.ringName(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	maxSide := s.cfg.MaxSide
	if v := q.Get("max"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 16 || n > 4096 {
			http.Error(w, "max: want 16-4096 pixels", http.StatusBadRequest)
			return
		}
		maxSide = n
	}
	format := q.Get("format")
	if format != "" && format != "png" && format != "jpeg" {
		http.Error(w, "format: want jpeg or png", http.StatusBadRequest)
		return
	}
	levels := q.Get("levels") == "1"
	var want uint64
	var res Result
	var haveRes bool
	if s.cfg.Results != nil {
		if res, haveRes = s.cfg.Results.Latest(name); haveRes {
			want = res.Seq
		}
	}
	pic, err := s.peek(name, want, maxSide, levels)
	if err != nil && want != 0 && haveRes {
		// The analyzed frame is gone from the ring: show the newest.
		haveRes = false
		pic, err = s.peek(name, 0, maxSide, levels)
	}
	if err != nil {
		code := http.StatusServiceUnavailable
		if errors.Is(err, ringstat.ErrUnknownRing) {
			code = http.StatusNotFound
		}
		http.Error(w, err.Error(), code)
		return
	}
	defer s.renderers.Put(pic.rend)
	if s.cfg.Results != nil && (!haveRes || res.Epoch != pic.epoch || res.Seq != pic.meta.Seq) {
		res, haveRes = s.cfg.Results.Lookup(name, pic.epoch, pic.meta.Seq)
	}
	var buf bytes.Buffer
	ctype := "image/jpeg"
	if format == "png" {
		ctype = "image/png"
		err = (&png.Encoder{CompressionLevel: png.BestSpeed}).Encode(&buf, pic.img)
	} else {
		err = jpeg.Encode(&buf, pic.img, &jpeg.Options{Quality: 85})
	}
	if err != nil {
		http.Error(w, "encode frame: "+err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	m := pic.meta
	h.Set("Content-Type", ctype)
	h.Set("X-Frame-Seq", strconv.FormatUint(m.Seq, 10))
	h.Set("X-Frame-Epoch", ringbuf.Epoch(pic.epoch).String())
	h.Set("X-Frame-Id", strconv.FormatUint(m.FrameID, 10))
	h.Set("X-Frame-Width", strconv.Itoa(int(m.Width)))
	h.Set("X-Frame-Height", strconv.Itoa(int(m.Height)))
	h.Set("X-Frame-Format", m.Format.String())
	if s.cfg.Results != nil {
		var b []byte
		if haveRes {
			if len(res.Boxes) > maxHeaderBoxes {
				res.Boxes = res.Boxes[:maxHeaderBoxes]
			}
			b, _ = json.Marshal(res)
		} else {
			b = []byte("null")
		}
		h.Set("X-Frame-Defects", string(b))
	}
	w.Write(buf.Bytes())
}

// maxHeaderBoxes bounds the boxes sent with a frame (a header of a few KiB).
const maxHeaderBoxes = 64

// picture is a peeked, rendered frame; img belongs to rend, which the
// caller returns to the pool once img is encoded.
type picture struct {
	epoch uint64
	meta  ringbuf.Meta
	rend  *renderer
	img   image.Image
}

// peek renders frame seq (0: the newest) of ring name. The rendering runs
// inside Peek, on shared memory; it is kept only if Peek validates it.
func (s *Server) peek(name string, seq uint64, maxSide int, levels bool) (picture, error) {
	rend := s.renderers.Get().(*renderer)
	var pic picture
	var rerr error
	epoch, err := s.host.Peek(name, seq, func(f ringbuf.Frame) {
		pic.meta = f.Meta
		pic.img, rerr = rend.render(f.Meta, f.Data, maxSide, levels)
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		s.renderers.Put(rend)
		return picture{}, err
	}
	pic.epoch, pic.rend = epoch, rend
	return pic, nil
}
