package bench

// The parent-child protocol: the parent passes a role and a params block in
// the environment, the child prints one result line on stdout prefixed by
// resultPrefix. Both are JSON; nothing here is shared memory.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// EnvRole names the environment variable that makes a harness binary run
// one child role instead of the harness (see IsChild and RunChild).
const EnvRole = "FRBENCH_ROLE"

const (
	envParams    = "FRBENCH_PARAMS"
	envLogLevel  = "FRBENCH_LOG"
	resultPrefix = "FRBENCH-RESULT "
)

// Child roles.
const (
	roleRingProducer   = "ring-producer"
	roleRingConsumer   = "ring-consumer"
	roleStreamSender   = "stream-sender"
	roleStreamReceiver = "stream-receiver"
	rolePingSender     = "ping-sender"
	rolePingReceiver   = "ping-receiver"
	roleMemcpy         = "memcpy"
	roleCache          = "cache"
)

// Consumer wait strategies (ringbuf.Options.Spin).
const (
	// WaitPoll busy-polls and never sleeps (Spin < 0).
	WaitPoll = "busy-poll"
	// WaitFutex spins about 64 loads, then sleeps on the ring's futex.
	WaitFutex = "futex"
	// WaitSpin is the ring's default: spin 20µs, then sleep on the futex.
	WaitSpin = "spin20us+futex"
	// WaitLatency is WaitFutex in the ring's latency mode
	// (ringbuf.Options.Latency): the consumer process runs with
	// GOMAXPROCS=1 and sleeps in a raw futex wait.
	WaitLatency = "futex-latency"
	// WaitEarly is WaitLatency with the ring's early wake-up for periodic
	// sources (ringbuf.Options.EarlyWake = earlyWakeWindow): the consumer
	// wakes before the frame is due and polls for it.
	WaitEarly = "early-wake"
)

// earlyWakeWindow is the WaitEarly consumer's EarlyWake: it polls from
// this long before the predicted frame (until this long after it), at a
// CPU cost of about this much per frame or more (the rows report it).
// It must cover the source's jitter and the spread of a timed sleep's
// wake-up: on the 2-core KVM guest of the README's numbers, timed
// wake-ups end 40-170 µs late, and 50 µs caught a third of the frames.
const earlyWakeWindow = 200 * time.Microsecond

// Consumer read modes.
const (
	// ReadLease takes the lease and releases it without touching the bytes
	// (the baselines' equivalent reads the bytes out of the kernel, which
	// is the least a copying transport can do).
	ReadLease = "lease"
	// ReadWords reads every byte with a memory-bound kernel (wordSum:
	// 64-bit words into eight independent accumulators), so the row
	// measures the ring and memory, not a checksum's dependency chain.
	ReadWords = "words"
	// ReadSum checksums every byte with frame.Sum64 (the integrity check,
	// a serial chain: about 4-5 GB/s, well below memory bandwidth).
	ReadSum = "sum"
)

// Transports of the stream baselines.
const (
	TransportSocket = "unix-socket"
	TransportPipe   = "pipe"
)

// Frame flags the ring producer sets in Meta.Flags.
const (
	flagWarm = 1 << 0 // warm-up frame, not measured
	flagLast = 1 << 1 // last measured frame
)

// params is everything a child needs; one struct serves every role.
type params struct {
	Role       string `json:"role"`
	Path       string `json:"path,omitempty"` // ring socket, or stream socket prefix
	Transport  string `json:"transport,omitempty"`
	Payload    int    `json:"payload,omitempty"`
	Width      int    `json:"width,omitempty"` // ring producer: frame geometry (0: dims(Payload))
	Height     int    `json:"height,omitempty"`
	Slots      int    `json:"slots,omitempty"`
	Consumers  int    `json:"consumers,omitempty"` // producer: consumers to wait for; sender: fan-out
	Index      int    `json:"index,omitempty"`
	Mode       string `json:"mode,omitempty"` // lossy, lossless
	Wait       string `json:"wait,omitempty"`
	Read       string `json:"read,omitempty"`
	Frames     int    `json:"frames,omitempty"` // measured frames, at most
	Warmup     int    `json:"warmup,omitempty"`
	DurationNs int64  `json:"duration_ns,omitempty"` // measured loop, at most
	IntervalNs int64  `json:"interval_ns,omitempty"` // pacing; 0 = flat out
	CapNs      int64  `json:"cap_ns,omitempty"`      // the child's whole life, at most
	HugePages  bool   `json:"huge_pages,omitempty"`
	Split      bool   `json:"split,omitempty"`       // consumer: Wait and Borrow timed apart instead of Next
	LockThread bool   `json:"lock_thread,omitempty"` // consumer: stay on one thread and report its tid
	PerFrame   bool   `json:"per_frame,omitempty"`   // consumer: report each measured frame's latency (FrameLat; Frames bounds it)
	Sizes      []int  `json:"sizes,omitempty"`       // memcpy: frame sizes; cache: working sets
	BufBytes   int    `json:"buf_bytes,omitempty"`
}

// cost is what a process spent over its measured window.
type cost struct {
	WindowNs int64  `json:"window_ns"`
	CPUNs    int64  `json:"cpu_ns"`
	UserNs   int64  `json:"user_ns"`
	SysNs    int64  `json:"sys_ns"`
	Mallocs  uint64 `json:"mallocs"`
}

// result is one child's report.
type result struct {
	Role    string `json:"role"`
	Index   int    `json:"index"`
	Tid     int    `json:"tid,omitempty"` // the locked thread (LockThread)
	Frames  uint64 `json:"frames"`        // measured frames published, delivered, sent or received
	Warmup  uint64 `json:"warmup"`
	Bytes   uint64 `json:"bytes"`
	FirstNs int64  `json:"first_ns"` // monotonic time of the first and last measured frame
	LastNs  int64  `json:"last_ns"`
	Cost    cost   `json:"cost"`
	// Encoded HDR histograms (V2, base64): latency, publish and acquire cost.
	Lat    string `json:"lat,omitempty"`
	Pub    string `json:"pub,omitempty"`
	Acq    string `json:"acq,omitempty"`
	RTT    string `json:"rtt,omitempty"`
	Borrow string `json:"borrow,omitempty"` // split consumer: Wait's return → Borrow's
	Seen   string `json:"seen,omitempty"`   // split consumer: publish → Wait's return
	// FrameLat is [frame id, latency ns] per measured frame (PerFrame).
	FrameLat [][2]int64 `json:"frame_lat,omitempty"`
	Skipped  uint64     `json:"skipped,omitempty"`
	Missed   uint64     `json:"missed,omitempty"`
	NoSlot   uint64     `json:"no_slot,omitempty"` // producer: frames that found no free slot at first
	// BlockedNs is the producer's time waiting for a free slot.
	BlockedNs int64  `json:"blocked_ns,omitempty"`
	Corrupt   uint64 `json:"corrupt,omitempty"`
	Sum       uint64 `json:"sum,omitempty"`
	// Memcpy probe.
	Memcpy []memPoint `json:"memcpy,omitempty"`
	// Cache probe: the fill's bandwidth per working set.
	Cache []CachePoint `json:"cache,omitempty"`
}

type memPoint struct {
	Payload  int     `json:"payload"`
	CopyGBps float64 `json:"copy_gbps"`
	FillGBps float64 `json:"fill_gbps"`
}

// newHist makes the histogram every role records nanoseconds in: 1 ns to
// 100 s, three significant figures.
func newHist() *hdr.Histogram { return hdr.New(1, 100_000_000_000, 3) }

func record(h *hdr.Histogram, v int64) {
	if v < 1 {
		v = 1
	}
	if v > h.HighestTrackableValue() {
		v = h.HighestTrackableValue()
	}
	// In range by construction; RecordValue fails only out of range.
	_ = h.RecordValue(v)
}

func encodeHist(h *hdr.Histogram) (string, error) {
	if h == nil || h.TotalCount() == 0 {
		return "", nil
	}
	b, err := h.EncodeV2()
	if err != nil {
		return "", fmt.Errorf("encode histogram: %w", err)
	}
	return string(b), nil
}

func decodeHist(s string) (*hdr.Histogram, error) {
	if s == "" {
		return newHist(), nil
	}
	h, err := hdr.Decode([]byte(s))
	if err != nil {
		return nil, fmt.Errorf("decode histogram: %w", err)
	}
	return h, nil
}

func emitResult(r *result) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode result: %w", err)
	}
	if _, err := os.Stdout.Write(append(append([]byte(resultPrefix), b...), '\n')); err != nil {
		return fmt.Errorf("write result: %w", err)
	}
	return nil
}

// parseResult finds the result line in a child's stdout.
func parseResult(out []byte) (result, error) {
	var r result
	found := false
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 1<<16), 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.HasPrefix(line, []byte(resultPrefix)) {
			continue
		}
		if err := json.Unmarshal(line[len(resultPrefix):], &r); err != nil {
			return result{}, fmt.Errorf("parse result: %w", err)
		}
		found = true
	}
	if err := sc.Err(); err != nil {
		return result{}, fmt.Errorf("parse result: %w", err)
	}
	if !found {
		return result{}, fmt.Errorf("parse result: no %q line", resultPrefix)
	}
	return r, nil
}
