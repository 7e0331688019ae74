package bench

// The floor: a two-process handoff over one shared cache line, no ring.
//
// Layout of the ping segment (one page from shm.CreateSegment, passed to
// both children as descriptor 3):
//
//	0x00 u64 seq    sender stores after ts; the receiver polls it
//	0x08 u64 ts     sender's CLOCK_MONOTONIC immediately before seq
//	0x10 u64 ack    receiver stores the seq it saw (round trip)
//	0x18 u64 ready  receiver stores 1 once it polls
//
// All four words share one cache line, as the ring's published word and
// its neighbours would in the best case. Ordering: the sender stores ts,
// then seq (both sequentially consistent); a receiver that loads seq == i
// then loads ts sees t_i (a later ts needs ack == i first).

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/framering/framering/shm"
)

const (
	pingSeq   = 0x00
	pingTS    = 0x08
	pingAck   = 0x10
	pingReady = 0x18
	pingSize  = 4096
	pingDone  = ^uint64(0)
)

type pingWords struct {
	seq, ts, ack, ready *atomic.Uint64
	m                   *shm.Mapping
	seg                 *shm.Segment
}

func openPing() (*pingWords, error) {
	seg, err := shm.OpenSegment(os.NewFile(3, "ping"), 0, pingSize, true)
	if err != nil {
		return nil, fmt.Errorf("open ping segment: %w", err)
	}
	m, err := seg.Map(true)
	if err != nil {
		seg.Close()
		return nil, fmt.Errorf("open ping segment: %w", err)
	}
	w := &pingWords{m: m, seg: seg}
	for _, x := range []struct {
		p   **atomic.Uint64
		off uint64
	}{{&w.seq, pingSeq}, {&w.ts, pingTS}, {&w.ack, pingAck}, {&w.ready, pingReady}} {
		if *x.p, err = m.Uint64At(x.off); err != nil {
			w.close()
			return nil, fmt.Errorf("open ping segment: %w", err)
		}
	}
	return w, nil
}

func (w *pingWords) close() {
	w.m.Close()
	w.seg.Close()
}

func runPingSender(ctx context.Context, p params, _ *slog.Logger) (*result, error) {
	capAt := now() + p.CapNs
	w, err := openPing()
	if err != nil {
		return nil, fmt.Errorf("run ping sender: %w", err)
	}
	defer w.close()
	for w.ready.Load() == 0 {
		if ctx.Err() != nil || now() > capAt {
			return nil, fmt.Errorf("run ping sender: %w: no receiver", errTimeout)
		}
		time.Sleep(time.Millisecond)
	}
	rtt := newHist()
	res := &result{Role: p.Role}
	total := uint64(p.Warmup + p.Frames)
	var u0 usage
	var deadline int64
	pace := newPacer(p.IntervalNs)
	for i := uint64(1); i <= total; i++ {
		measuring := i > uint64(p.Warmup)
		if i == uint64(p.Warmup)+1 {
			u0 = startUsage()
			deadline = u0.mono + p.DurationNs
		}
		if measuring && now() >= deadline {
			break
		}
		if p.IntervalNs > 0 {
			pace.wait()
		}
		t := now()
		w.ts.Store(uint64(t))
		w.seq.Store(i)
		for n := 0; w.ack.Load() != i; n++ {
			if n&0xffff == 0xffff && now() > capAt {
				return nil, fmt.Errorf("run ping sender: %w: no ack for %d", errTimeout, i)
			}
		}
		if measuring {
			record(rtt, now()-t)
			res.Frames++
		} else {
			res.Warmup++
		}
	}
	u1 := endUsage()
	w.seq.Store(pingDone)
	res.Cost = u0.until(u1)
	if res.RTT, err = encodeHist(rtt); err != nil {
		return nil, err
	}
	return res, nil
}

func runPingReceiver(ctx context.Context, p params, _ *slog.Logger) (*result, error) {
	capAt := now() + p.CapNs
	w, err := openPing()
	if err != nil {
		return nil, fmt.Errorf("run ping receiver: %w", err)
	}
	defer w.close()
	lat := newHist()
	res := &result{Role: p.Role}
	w.ready.Store(1)
	var last uint64
	var u0 usage
	for n := 0; ; n++ {
		v := w.seq.Load()
		if v == last {
			if n&0xffff == 0xffff && (now() > capAt || ctx.Err() != nil) {
				return nil, fmt.Errorf("run ping receiver: %w after %d pings", errTimeout, last)
			}
			continue
		}
		t := now()
		if v == pingDone {
			break
		}
		sent := int64(w.ts.Load())
		w.ack.Store(v)
		last = v
		if v <= uint64(p.Warmup) {
			res.Warmup++
			continue
		}
		if res.Frames == 0 {
			u0 = startUsage()
		}
		record(lat, t-sent)
		res.Frames++
	}
	if res.Frames > 0 {
		res.Cost = u0.until(endUsage())
	}
	if res.Lat, err = encodeHist(lat); err != nil {
		return nil, err
	}
	return res, nil
}
