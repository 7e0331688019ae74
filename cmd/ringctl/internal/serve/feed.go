package serve

// Feed: the overlay's Results from the analyzers' live results streams
// (package results, docs/RESULTS.md).
//
// Invariants:
//   - A ring's sockets are looked for at most once per feedScan, on the
//     request path (a glob of the runtime directory; never a dial there):
//     each new socket gets a follower goroutine, which dials it, keeps the
//     ring's newest result and the last feedKeep by seq, and forgets the
//     socket when its stream ends (the next scan finds it again if an
//     analyzer serves it).
//   - Every field of a feedRing is guarded by Feed.mu.

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/framering/framering/results"
)

const (
	feedScan = time.Second
	feedKeep = 512 // results kept per ring, by seq
)

// Feed follows the results streams of every analyzer of the rings the
// view shows. It implements Results.
type Feed struct {
	ctx context.Context
	dir string
	log *slog.Logger

	mu    sync.Mutex
	rings map[string]*feedRing
}

type feedRing struct {
	scanned   time.Time
	following map[string]bool // socket paths with a follower
	latest    Result
	have      bool
	recent    [feedKeep]Result // by seq % feedKeep
}

// NewFeed returns a Feed for the results sockets in dir (the runtime
// directory); its followers stop with ctx.
func NewFeed(ctx context.Context, dir string, log *slog.Logger) *Feed {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Feed{ctx: ctx, dir: dir, log: log, rings: map[string]*feedRing{}}
}

// Latest implements Results.
func (f *Feed) Latest(ring string) (Result, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.ring(ring)
	return r.latest, r.have
}

// Lookup implements Results.
func (f *Feed) Lookup(ring string, epoch, seq uint64) (Result, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.ring(ring)
	res := r.recent[seq%feedKeep]
	if res.Seq != seq || res.Epoch != epoch || seq == 0 {
		return Result{}, false
	}
	return res, true
}

// ring returns ring's state, looking for new sockets when due. f.mu held.
func (f *Feed) ring(name string) *feedRing {
	r := f.rings[name]
	if r == nil {
		r = &feedRing{following: map[string]bool{}}
		f.rings[name] = r
	}
	if now := time.Now(); now.Sub(r.scanned) >= feedScan && f.ctx.Err() == nil {
		r.scanned = now
		paths, _ := filepath.Glob(filepath.Join(f.dir, globEscape(name)+".*.results"))
		for _, p := range paths {
			if !r.following[p] {
				r.following[p] = true
				go f.follow(name, p)
			}
		}
	}
	return r
}

// globEscape escapes the glob metacharacters of a ring name.
func globEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`).Replace(s)
}

// follow reads one results stream until it ends.
func (f *Feed) follow(ring, path string) {
	defer func() {
		f.mu.Lock()
		delete(f.rings[ring].following, path)
		f.mu.Unlock()
	}()
	ctx, cancel := context.WithTimeout(f.ctx, 2*time.Second)
	c, err := results.Dial(ctx, path)
	cancel()
	if err != nil {
		f.log.Debug("results stream", "socket", path, "err", err)
		return
	}
	defer c.Close()
	stop := context.AfterFunc(f.ctx, func() { c.Close() })
	defer stop()
	f.log.Info("overlay: following results", "ring", ring, "analyzer", c.Hello.Analyzer, "socket", path)
	for {
		m, err := c.Next()
		if err != nil {
			f.log.Info("overlay: results stream ended", "ring", ring, "socket", path, "err", err)
			return
		}
		if m.Result == nil {
			continue
		}
		res := Result{Epoch: uint64(m.Result.Epoch), Seq: m.Result.Seq, Boxes: make([]Box, 0, len(m.Result.Defects))}
		for _, d := range m.Result.Defects {
			res.Boxes = append(res.Boxes, Box{X: d.X, Y: d.Y, W: d.W, H: d.H, Bright: d.Bright})
		}
		f.mu.Lock()
		r := f.rings[ring]
		r.recent[res.Seq%feedKeep] = res
		if !r.have || res.Epoch != r.latest.Epoch || res.Seq > r.latest.Seq {
			r.latest, r.have = res, true
		}
		f.mu.Unlock()
	}
}
