package bench

import "github.com/framering/framering/shm"

// pacer paces a sender at one frame per interval without a Go timer: the
// thread sleeps in clock_nanosleep(TIMER_ABSTIME) until the next tick
// (shm.SleepUntil), as the C futex ping does, so no timer thread or
// netpoller wake-up happens per frame. Ticks are absolute (start +
// k·interval); a tick already past is skipped, not made up in a burst.
type pacer struct {
	interval, next int64
}

func newPacer(interval int64) *pacer { return &pacer{interval: interval, next: now() + interval} }

func (p *pacer) wait() {
	for t := now(); t < p.next; t = now() {
		shm.SleepUntil(p.next)
	}
	p.next += p.interval
	if t := now(); p.next <= t {
		p.next = t + p.interval
	}
}
