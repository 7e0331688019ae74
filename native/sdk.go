//go:build cgo

package native

// The C SDK backend: a Grabber over the simulated SDK in .
//
// Invariants kept by this file:
//
//  1. Buffers C keeps are never Go memory: Announce admits only shared
//     mappings (checkShared) and Allocate's memory is C's mmap.
//  2. Announce, Allocate and Revoke call C with the lease table locked, so
//     the table's view of which memory a buffer index has changes together
//     with C's (lease.go invariant 3).
//  3. Close ends every lease before C revokes the buffers and unmaps
//     allocated memory, so no Frame can reach unmapped memory through this
//     package (a slice the caller kept from Bytes still can: that is the
//     documented end of its validity).

import (
	"context"
	"fmt"
	"sync"
	"time"
	"unsafe"

	"github.com/framering/framering/clock"
)

// SDKAvailable reports whether this build includes the C SDK backend.
const SDKAvailable = true

// dequeuePoll bounds one wait inside C when the context can be cancelled:
// cancellation is noticed within it (Stop and Close wake waiters at once).
const dequeuePoll = 20 * time.Millisecond

// dequeueWait is how long a Dequeue's next wait inside C may last, in ns
// (-1: until a frame, Stop or Close, when ctx cannot be cancelled), for a
// call whose timeout ends at end (clock.Nanos; 0: none); or why it must not
// wait again: ctx's error, or ErrNoFrame once end has passed. The SDK's
// and GStreamer's Dequeue loops share it.
func dequeueWait(ctx context.Context, end int64) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("dequeue frame: %w", err)
	}
	wait := int64(-1)
	if ctx.Done() != nil {
		wait = int64(dequeuePoll)
		if dl, ok := ctx.Deadline(); ok {
			left := time.Until(dl)
			if left <= 0 {
				return 0, fmt.Errorf("dequeue frame: %w", context.DeadlineExceeded)
			}
			wait = min(wait, int64(left))
		}
	}
	if end != 0 {
		left := end - clock.Nanos()
		if left <= 0 {
			return 0, ErrNoFrame
		}
		if wait < 0 || left < wait {
			wait = left
		}
	}
	return wait, nil
}

type sdkDevice struct {
	h         uint64 // the C handle; immutable
	l         leases
	closeOnce sync.Once

	mu  sync.Mutex
	cfg Config // last configuration C accepted, for Config after Close
}

// OpenSDK opens the simulated C SDK with cfg. It starts stopped.
func OpenSDK(cfg Config) (Grabber, error) {
	if cfg.HasFaults() {
		return nil, fmt.Errorf("open sdk grabber: %w: fault injection is the synthetic source's", StatusInvalidArgument)
	}
	if st := cfg.validate(); st != StatusOK {
		return nil, fmt.Errorf("open sdk grabber: %w", st)
	}
	c := cfg.toC()
	h, st := frOpen(&c)
	if st != StatusOK {
		return nil, fmt.Errorf("open sdk grabber: %w", st)
	}
	d := &sdkDevice{h: h, cfg: cfg}
	d.l.owner = d
	return d, nil
}

func (d *sdkDevice) Config() Config {
	var c cConfig
	if frGetConfig(d.h, &c) == StatusOK {
		return c.config()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg
}

func (d *sdkDevice) SetConfig(cfg Config) error {
	if st := cfg.validate(); st != StatusOK {
		return fmt.Errorf("set config: %w", st)
	}
	c := cfg.toC()
	d.mu.Lock()
	defer d.mu.Unlock()
	if st := frSetConfig(d.h, &c); st != StatusOK {
		return fmt.Errorf("set config: %w", st)
	}
	d.cfg = cfg
	return nil
}

func (d *sdkDevice) Announce(buf []byte) (BufferID, error) {
	if err := checkAnnounce(buf); err != nil {
		return 0, err
	}
	d.l.mu.Lock()
	defer d.l.mu.Unlock()
	if d.l.closed {
		return 0, fmt.Errorf("announce buffer: %w", ErrClosed)
	}
	id, st := frAnnounceBuffer(d.h, unsafe.Pointer(unsafe.SliceData(buf)), uint64(len(buf)))
	if st != StatusOK {
		return 0, fmt.Errorf("announce buffer: %w", st)
	}
	d.l.setBuffer(id, buf)
	return id, nil
}

func (d *sdkDevice) Allocate(size int) (BufferID, error) {
	if size <= 0 {
		return 0, fmt.Errorf("allocate buffer: %w", ErrBufferSize)
	}
	d.l.mu.Lock()
	defer d.l.mu.Unlock()
	if d.l.closed {
		return 0, fmt.Errorf("allocate buffer: %w", ErrClosed)
	}
	id, base, st := frAllocateBuffer(d.h, uint64(size))
	if st != StatusOK {
		return 0, fmt.Errorf("allocate buffer: %w", st)
	}
	d.l.setBuffer(id, unsafe.Slice((*byte)(base), size))
	return id, nil
}

func (d *sdkDevice) Revoke(id BufferID) error {
	d.l.mu.Lock()
	defer d.l.mu.Unlock()
	if d.l.closed {
		return fmt.Errorf("revoke buffer: %w", ErrClosed)
	}
	if st := frRevokeBuffer(d.h, id); st != StatusOK {
		return fmt.Errorf("revoke buffer: %w", st)
	}
	d.l.clearBuffer(id)
	return nil
}

func (d *sdkDevice) Queue(id BufferID) error {
	if st := frQueueBuffer(d.h, id); st != StatusOK {
		return fmt.Errorf("queue buffer: %w", st)
	}
	return nil
}

func (d *sdkDevice) requeueBuffer(id BufferID) Status { return frRequeueBuffer(d.h, id) }
func (d *sdkDevice) detachBuffer(id BufferID) Status  { return frDetachBuffer(d.h, id) }

func (d *sdkDevice) Start() error {
	if st := frStart(d.h); st != StatusOK {
		return fmt.Errorf("start acquisition: %w", st)
	}
	return nil
}

func (d *sdkDevice) Stop() error {
	if st := frStop(d.h); st != StatusOK {
		return fmt.Errorf("stop acquisition: %w", st)
	}
	return nil
}

func (d *sdkDevice) Dequeue(ctx context.Context, timeout time.Duration) (Frame, error) {
	var info cFrameInfo
	var end int64 // CLOCK_MONOTONIC end of the timeout, 0: none
	if timeout > 0 {
		end = clock.Nanos() + int64(timeout)
	}
	for {
		wait, err := dequeueWait(ctx, end)
		if err != nil {
			return Frame{}, err
		}
		switch st := frDequeue(d.h, wait, &info); st {
		case StatusOK:
			fi := info.info()
			fi.Flags = FlagPattern
			d.mu.Lock()
			if d.cfg.Defects {
				fi.Flags |= FlagDefects
			}
			d.mu.Unlock()
			f, err := d.l.begin(fi)
			if err != nil {
				return Frame{}, fmt.Errorf("dequeue frame: %w", err)
			}
			return f, nil
		case StatusTimeout:
		default:
			return Frame{}, fmt.Errorf("dequeue frame: %w", st)
		}
	}
}

func (d *sdkDevice) Counters() Counters {
	var c cCounters
	if frGetCounters(d.h, &c) != StatusOK {
		return Counters{}
	}
	return c.counters()
}

func (d *sdkDevice) Close() error {
	var err error
	d.closeOnce.Do(func() {
		d.l.close()
		if st := frClose(d.h); st != StatusOK {
			err = fmt.Errorf("close device: %w", st)
		}
	})
	return err
}
