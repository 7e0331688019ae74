package bench

import (
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// Report is everything one run measured; it is written as results.json.
type Report struct {
	Machine    Machine         `json:"machine"`
	Config     Config          `json:"config"`
	Started    time.Time       `json:"started"`
	Finished   time.Time       `json:"finished"`
	Memcpy     []MemcpyRow     `json:"memcpy"`
	Ping       *PingRow        `json:"ping,omitempty"`
	FutexPing  *FutexPingRow   `json:"futex_ping,omitempty"`
	Latency    []LatencyRow    `json:"latency"`
	Breakdown  *BreakdownRow   `json:"breakdown,omitempty"`
	Throughput []ThroughputRow `json:"throughput"`
	Baselines  []BaselineRow   `json:"baselines"`
	Scale      []ScaleRow      `json:"scale"`
	GStreamer  []GStreamerRow  `json:"gstreamer"`
	Iceoryx    []IceoryxRow    `json:"iceoryx"`
	EBPF       *EBPFRow        `json:"ebpf,omitempty"`
	Targets    []Target        `json:"targets"`
	// Skipped says which parts did not run and why.
	Skipped  []string `json:"skipped"`
	Warnings []string `json:"warnings"`
	// Errors are scenarios that failed; the run goes on without them.
	Errors []string `json:"errors"`
}

// Percentiles of a histogram, in nanoseconds.
type Percentiles struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"mean"`
	P50   int64   `json:"p50"`
	P99   int64   `json:"p99"`
	P999  int64   `json:"p999"`
	Max   int64   `json:"max"`
}

func percentiles(h *hdr.Histogram) Percentiles {
	if h == nil || h.TotalCount() == 0 {
		return Percentiles{}
	}
	return Percentiles{Count: h.TotalCount(), Mean: h.Mean(), P50: h.ValueAtQuantile(50),
		P99: h.ValueAtQuantile(99), P999: h.ValueAtQuantile(99.9), Max: h.Max()}
}

// ProcStat is one process of a scenario.
type ProcStat struct {
	Role           string  `json:"role"`
	Index          int     `json:"index"`
	Frames         uint64  `json:"frames"`
	FPS            float64 `json:"fps"`
	CPUPerFrameNs  float64 `json:"cpu_per_frame_ns"`
	UserPerFrameNs float64 `json:"user_per_frame_ns"`
	SysPerFrameNs  float64 `json:"sys_per_frame_ns"`
	CPUUtil        float64 `json:"cpu_util"` // cores busy over the window
	AllocsPerFrame float64 `json:"allocs_per_frame"`
	Mallocs        uint64  `json:"mallocs"`
	Skipped        uint64  `json:"skipped,omitempty"`
	Missed         uint64  `json:"missed,omitempty"`
	NoSlot         uint64  `json:"no_slot,omitempty"`
	Corrupt        uint64  `json:"corrupt,omitempty"`
	// Blocked is the share of the window a producer waited for a free
	// slot (lossless backpressure, or every slot held).
	Blocked float64 `json:"blocked,omitempty"`
}

func procStat(r result) ProcStat {
	s := ProcStat{Role: r.Role, Index: r.Index, Frames: r.Frames, FPS: rate(r), Mallocs: r.Cost.Mallocs,
		Skipped: r.Skipped, Missed: r.Missed, NoSlot: r.NoSlot, Corrupt: r.Corrupt}
	if r.Frames > 0 {
		n := float64(r.Frames)
		s.CPUPerFrameNs = float64(r.Cost.CPUNs) / n
		s.UserPerFrameNs = float64(r.Cost.UserNs) / n
		s.SysPerFrameNs = float64(r.Cost.SysNs) / n
		s.AllocsPerFrame = float64(r.Cost.Mallocs) / n
	}
	if r.Cost.WindowNs > 0 {
		s.CPUUtil = float64(r.Cost.CPUNs) / float64(r.Cost.WindowNs)
		s.Blocked = float64(r.BlockedNs) / float64(r.Cost.WindowNs)
	}
	return s
}

// rate is frames per second between the first and the last measured frame.
func rate(r result) float64 {
	if r.Frames < 2 || r.LastNs <= r.FirstNs {
		return 0
	}
	return float64(r.Frames-1) / (float64(r.LastNs-r.FirstNs) / 1e9)
}

// MemcpyRow is the single-core copy (and fill) bandwidth at one size.
type MemcpyRow struct {
	Payload  int     `json:"payload"`
	CopyGBps float64 `json:"copy_gbps"`
	FillGBps float64 `json:"fill_gbps"`
	// CopyFPS and FillFPS are the frame rates those bandwidths allow.
	CopyFPS float64 `json:"copy_fps"`
	FillFPS float64 `json:"fill_fps"`
}

// PingRow is the cache-line ping floor.
type PingRow struct {
	OneWay   Percentiles `json:"one_way"`
	HalfRTT  Percentiles `json:"half_rtt"`
	Receiver ProcStat    `json:"receiver"`
	Sender   ProcStat    `json:"sender"`
	// OtherLoad is the CPU other processes used meanwhile (cores).
	OtherLoad float64 `json:"other_load_cores"`
}

// LatencyRow is one handoff-latency scenario.
type LatencyRow struct {
	Payload int         `json:"payload"`
	Wait    string      `json:"wait"`
	Latency Percentiles `json:"latency"`
	Publish Percentiles `json:"publish"`
	Acquire Percentiles `json:"acquire"`
	// The same run's floor for this wait: the cache-line ping for a
	// polling consumer, the C futex ping for a sleeping one (Floor names it).
	Floor     string     `json:"floor,omitempty"`
	FloorP50  int64      `json:"floor_p50"`
	FloorP99  int64      `json:"floor_p99"`
	FloorP999 int64      `json:"floor_p999"`
	Producer  ProcStat   `json:"producer"`
	Consumers []ProcStat `json:"consumers"`
	Warning   string     `json:"warning,omitempty"`
	// OtherLoad is the CPU other processes used meanwhile (cores).
	OtherLoad float64 `json:"other_load_cores"`
}

// BreakdownRow is the busy-poll handoff with Next taken apart: when the
// frame became visible to Wait, and what Borrow took after that.
type BreakdownRow struct {
	Payload   int         `json:"payload"`
	Seen      Percentiles `json:"seen"`   // publish timestamp → Wait returns
	Borrow    Percentiles `json:"borrow"` // Wait returns → Borrow returns
	Leased    Percentiles `json:"leased"` // publish timestamp → Borrow returns
	OtherLoad float64     `json:"other_load_cores"`
}

// ThroughputRow is one flat-out ring scenario, with its baselines.
type ThroughputRow struct {
	Payload      int         `json:"payload"`
	Consumers    int         `json:"consumers"`
	Mode         string      `json:"mode"`
	Read         string      `json:"read"`
	Slots        int         `json:"slots"`
	WorkingSet   string      `json:"working_set"` // slots × payload, against the LLC
	Sent         uint64      `json:"sent"`
	Received     []uint64    `json:"received"`
	ProducerFPS  float64     `json:"producer_fps"`
	FPS          float64     `json:"fps"` // per consumer, mean
	MinFPS       float64     `json:"min_fps"`
	GBps         float64     `json:"gbps"` // per consumer, mean
	Lost         uint64      `json:"lost"` // skipped + missed, all consumers
	NoSlot       uint64      `json:"no_slot"`
	Corrupt      uint64      `json:"corrupt"`
	Publish      Percentiles `json:"publish"`
	Latency      Percentiles `json:"latency"` // under load: queueing included
	SocketFPS    float64     `json:"socket_fps,omitempty"`
	PipeFPS      float64     `json:"pipe_fps,omitempty"`
	VsSocket     float64     `json:"vs_socket,omitempty"`
	VsPipe       float64     `json:"vs_pipe,omitempty"`
	FillLimitFPS float64     `json:"fill_limit_fps,omitempty"`
	Producer     ProcStat    `json:"producer"`
	ConsumerStat []ProcStat  `json:"consumer_stats"`
	Warning      string      `json:"warning,omitempty"`
	// OtherLoad is the CPU other processes used meanwhile (cores).
	OtherLoad float64 `json:"other_load_cores"`
}

// BaselineRow is one copying-transport scenario.
type BaselineRow struct {
	Transport string     `json:"transport"`
	Payload   int        `json:"payload"`
	Receivers int        `json:"receivers"`
	Read      string     `json:"read"`
	Sent      uint64     `json:"sent"`
	Received  []uint64   `json:"received"`
	FPS       float64    `json:"fps"` // per receiver, mean
	GBps      float64    `json:"gbps"`
	Corrupt   uint64     `json:"corrupt"`
	Sender    ProcStat   `json:"sender"`
	Receiver  []ProcStat `json:"receiver_stats"`
	Warning   string     `json:"warning,omitempty"`
	// OtherLoad is the CPU other processes used meanwhile (cores).
	OtherLoad float64 `json:"other_load_cores"`
}

// ScaleRow is one consumer count.
type ScaleRow struct {
	Consumers int         `json:"consumers"`
	Wait      string      `json:"wait"`
	Payload   int         `json:"payload"`
	Frames    uint64      `json:"frames"`
	Publish   Percentiles `json:"publish"`
	Latency   Percentiles `json:"latency"` // all consumers merged
	// LastAwake is, over the AllSaw frames every consumer took, the
	// latency of the last consumer to take each.
	LastAwake     Percentiles `json:"last_awake"`
	AllSaw        int         `json:"all_saw"`
	WorstP99      int64       `json:"worst_consumer_p99"`
	Lost          uint64      `json:"lost"`
	Producer      ProcStat    `json:"producer"`
	ConsumerCPU   float64     `json:"consumer_cpu_per_frame_ns"` // mean over consumers
	MaxAllocs     float64     `json:"max_allocs_per_frame"`
	ConsumerStats []ProcStat  `json:"consumer_stats"`
	Warning       string      `json:"warning,omitempty"`
	// OtherLoad is the CPU other processes used meanwhile (cores).
	OtherLoad float64 `json:"other_load_cores"`
}

// GStreamerRow is one shmsink/shmsrc run, and the framesrc run on the
// same geometry.
type GStreamerRow struct {
	Payload  int     `json:"payload"`
	Width    int     `json:"width"`
	Height   int     `json:"height"`
	Sent     int     `json:"sent"`
	Received int     `json:"received"`
	FPS      float64 `json:"fps"`
	GBps     float64 `json:"gbps"`
	// RingFPS is the ring's rate at the same payload with one lossless
	// lease-only consumer; VsRing is RingFPS / FPS.
	RingFPS float64 `json:"ring_fps,omitempty"`
	VsRing  float64 `json:"ring_vs_gstreamer,omitempty"`
	Note    string  `json:"note,omitempty"`
	// CPUPerFrameNs is the receiving gst-launch-1.0's CPU time (its
	// start-up and the printing of every buffer included) per buffer.
	CPUPerFrameNs float64 `json:"receiver_cpu_per_frame_ns"`
	// Framesrc: producer (synthetic, free run) -> ring -> framesrc ->
	// fakesink, measured the same way; VsShm is its rate over shmsrc's.
	Framesrc *GStreamerRun `json:"framesrc,omitempty"`
	VsShm    float64       `json:"framesrc_vs_shmsrc,omitempty"`
}

// GStreamerRun is one receiver's measurement.
type GStreamerRun struct {
	Received      int     `json:"received"`
	CPUPerFrameNs float64 `json:"receiver_cpu_per_frame_ns"`
	FPS           float64 `json:"fps"`
	GBps          float64 `json:"gbps"`
	Note          string  `json:"note,omitempty"`
}

// EBPFRow splits the futex wake-up latency with scheduler tracepoints.
type EBPFRow struct {
	Skipped string `json:"skipped,omitempty"`
	Payload int    `json:"payload,omitempty"`
	// Wakeups of the consumer's thread traced in the measured window.
	Wakeups int64 `json:"wakeups,omitempty"`
	// WakingToWakeup is sched_waking → sched_wakeup: the wake reaching
	// the consumer CPU's run queue (an IPI when the wake is remote).
	WakingToWakeup Percentiles `json:"waking_to_wakeup"`
	// RunQueue is sched_wakeup → sched_switch into the woken thread.
	RunQueue Percentiles `json:"run_queue"`
	// Total is the ring's futex latency in the same run; RestP50 is its
	// p50 minus the two p50s above: publish to the wake (Publish's
	// stores, the FUTEX_WAKE syscall up to try_to_wake_up), and switch-in
	// to the consumer's clock (return from the futex syscall, Wait's
	// re-check, Borrow).
	Total     Percentiles `json:"total"`
	RestP50   int64       `json:"rest_p50"`
	OtherLoad float64     `json:"other_load_cores"`
	Note      string      `json:"note,omitempty"`
}

// Target is one goal, met or not. Met is nil when it could not be judged.
type Target struct {
	Name   string `json:"name"`
	Met    *bool  `json:"met"`
	Detail string `json:"detail"`
}
