package serve

// The Prometheus collector of every ring on the host. One Collect takes one
// fresh snapshot per ring (ringstat.Host.Snapshots), so every series of a
// ring in a scrape comes from the same moment; nothing is cached between
// scrapes. Names follow the Prometheus conventions: base units (seconds,
// bytes), counters end in _total, an enumeration is one gauge per value
// (1 for the current one).

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/framering/framering/loss"
	"github.com/framering/framering/ringbuf"
	"github.com/framering/framering/ringstat"
)

const ns = "framering"

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(ns+"_"+name, help, labels, nil)
}

var (
	rl = []string{"ring"}
	cl = []string{"ring", "consumer", "mode", "entry"}

	mUp           = desc("ring_up", "1 when the ring's state could be read (attached, or through /proc for a producer that does not answer), else 0.", rl...)
	mStatus       = desc("ring_status", "The ring's status as the server sees it: 1 for the current one (live, unresponsive, stale, closing, error).", "ring", "status")
	mInfo         = desc("ring_info", "The ring's producer run: always 1; labels carry its epoch (16 hex digits) and producer pid.", "ring", "epoch", "producer_pid")
	mRingState    = desc("ring_state", "The ring's state: 1 for the current one (init, running, closed).", "ring", "state")
	mSourceState  = desc("source_state", "The producer's acquisition loop: 1 for the current state (starting, acquiring, waiting, source_lost, stopped).", "ring", "state")
	mStalled      = desc("producer_stalled", "1 when the producer's heartbeat is older than the stall limit while its source is not idle: stopped or hung.", rl...)
	mHBAge        = desc("producer_heartbeat_age_seconds", "Time since the producer's acquisition loop last made progress.", rl...)
	mHBPeriod     = desc("producer_heartbeat_period_seconds", "The longest the producer promises to go between heartbeats.", rl...)
	mUptime       = desc("producer_uptime_seconds", "Time since the producer created the ring.", rl...)
	mPublished    = desc("frames_published_total", "Frames published to the ring (its last sequence number).", rl...)
	mDropped      = desc("frames_dropped_total", "Frames lost before they got a sequence number, by cause (the ring's drop table).", "ring", "cause")
	mCopies       = desc("frames_copied_total", "Frames the producer copied into their slot (safe-copy mode, or a source that cannot write into ring memory).", rl...)
	mEvictions    = desc("consumer_evictions_total", "Consumers evicted by the producer (quota, pinned ring, blocking holds).", rl...)
	mDetaches     = desc("consumer_detaches_total", "Consumers that detached cleanly (said bye).", rl...)
	mReclaims     = desc("consumer_reclaims_total", "Consumer entries the producer reclaimed without a bye (crashes, kills).", rl...)
	mReclaimedH   = desc("reclaimed_holds_total", "Slot holds still set when their consumer's entry was reclaimed.", rl...)
	mRevokedH     = desc("revoked_holds_total", "Slot holds revoked by evictions.", rl...)
	mSlots        = desc("slots", "Slots by state (free, writing, published, held).", "ring", "state")
	mSlotCap      = desc("slot_capacity_bytes", "Bytes one slot holds.", rl...)
	mHoldQuota    = desc("hold_quota_slots", "The most slots one consumer may hold at once.", rl...)
	mConsumers    = desc("consumers", "Consumer table entries in use (active or evicted).", rl...)
	mCDelivered   = desc("consumer_frames_delivered_total", "Frames the consumer took.", cl...)
	mCSkipped     = desc("consumer_frames_skipped_total", "Frames a lossy consumer passed over for a newer one.", cl...)
	mCMissed      = desc("consumer_frames_missed_total", "Frames overwritten before the consumer could take them.", cl...)
	mCLag         = desc("consumer_lag_frames", "Published frames the consumer has not passed yet.", cl...)
	mCHeld        = desc("consumer_held_slots", "Leases the consumer holds now.", cl...)
	mCLatency     = desc("consumer_latency_seconds", "The consumer's last capture-to-delivery latency (the ring records the last one only).", cl...)
	mCBlock       = desc("consumer_block_drops_total", "Frames dropped (cause blocked) while this consumer was the one blamed.", cl...)
	mCRevokedH    = desc("consumer_revoked_holds_total", "The consumer's holds revoked when it was evicted.", cl...)
	mCRevokedSeen = desc("consumer_revoked_seen_total", "Leases the consumer found revoked at release.", cl...)
	mCEvicted     = desc("consumer_evicted", "1 when the consumer's entry is evicted, with the reason.", append(append([]string{}, cl...), "reason")...)
	mCAttached    = desc("consumer_attached_timestamp_seconds", "When the consumer attached (Unix time).", cl...)

	allDescs = []*prometheus.Desc{mUp, mStatus, mInfo, mRingState, mSourceState, mStalled, mHBAge, mHBPeriod, mUptime,
		mPublished, mDropped, mCopies, mEvictions, mDetaches, mReclaims, mReclaimedH, mRevokedH, mSlots, mSlotCap, mHoldQuota,
		mConsumers, mCDelivered, mCSkipped, mCMissed, mCLag, mCHeld, mCLatency, mCBlock, mCRevokedH, mCRevokedSeen, mCEvicted,
		mCAttached}

	statuses    = []string{ringstat.StatusLive, ringstat.StatusUnresponsive, ringstat.StatusStale, ringstat.StatusClosing, ringstat.StatusError}
	ringStates  = []string{"init", "running", "closed"}
	slotStates  = []string{"free", "writing", "published", "held"}
	sourceNames = func() []string {
		var out []string
		for s := ringbuf.SourceStarting; s <= ringbuf.SourceStopped; s++ {
			out = append(out, s.String())
		}
		return out
	}()
	// ringCauses are the causes the ring's drop table counts: always
	// exported (zero included), so a rate over them exists from the start.
	ringCauses = func() []loss.Cause {
		var out []loss.Cause
		for _, c := range loss.Known() {
			if c.Where() == loss.Ring && c != loss.Several {
				out = append(out, c)
			}
		}
		return out
	}()
)

// labelValue makes a state name a label value: "source lost" -> "source_lost".
func labelValue(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c == ' ' {
			b[i] = '_'
		}
	}
	return string(b)
}

// ringCollector exports every ring of a Host.
type ringCollector struct {
	host    *ringstat.Host
	timeout time.Duration // bounds a scrape's /proc inspections
}

func (c *ringCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
}

func (c *ringCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	for _, st := range c.host.Snapshots(ctx) {
		collectRing(ch, st)
	}
}

func gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func counter(ch chan<- prometheus.Metric, d *prometheus.Desc, v uint64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// collectRing writes one ring's series, all from st's one snapshot.
func collectRing(ch chan<- prometheus.Metric, st ringstat.RingState) {
	name := st.Name
	for _, s := range statuses {
		gauge(ch, mStatus, b2f(s == st.Status), name, s)
	}
	up := st.Status == ringstat.StatusLive || st.Status == ringstat.StatusUnresponsive
	gauge(ch, mUp, b2f(up), name)
	if !up {
		return
	}
	s := st.Snapshot
	rep := ringstat.Build(name, st.Socket, s, nil, 0)
	gauge(ch, mInfo, 1, name, ringbuf.Epoch(s.Epoch).String(), strconv.Itoa(s.ProducerPid))
	for _, v := range ringStates {
		gauge(ch, mRingState, b2f(v == s.State), name, v)
	}
	for _, v := range sourceNames {
		gauge(ch, mSourceState, b2f(v == s.SourceState), name, labelValue(v))
	}
	gauge(ch, mStalled, b2f(rep.Producer.Stalled), name)
	gauge(ch, mHBAge, max(s.HeartbeatAge, 0).Seconds(), name)
	gauge(ch, mHBPeriod, s.HeartbeatPeriod.Seconds(), name)
	gauge(ch, mUptime, max(s.Uptime, 0).Seconds(), name)
	counter(ch, mPublished, s.Published, name)
	for _, c := range ringCauses {
		counter(ch, mDropped, s.Drops[c], name, c.String())
	}
	for c, n := range s.Drops {
		if n != 0 && (loss.Cause(c).Where() != loss.Ring || loss.Cause(c) == loss.Several) {
			// A code this build does not count as a ring cause: still exported.
			counter(ch, mDropped, n, name, loss.Cause(c).String())
		}
	}
	counter(ch, mCopies, s.Copies, name)
	counter(ch, mEvictions, s.Evictions, name)
	counter(ch, mDetaches, s.Detaches, name)
	counter(ch, mReclaims, s.Reclaims, name)
	counter(ch, mReclaimedH, s.ReclaimedHolds, name)
	counter(ch, mRevokedH, s.RevokedHolds, name)
	sc := rep.SlotCounts
	for i, n := range []int{sc.Free, sc.Writing, sc.Published, sc.Held} {
		gauge(ch, mSlots, float64(n), name, slotStates[i])
	}
	gauge(ch, mSlotCap, float64(s.SlotCapacity), name)
	gauge(ch, mHoldQuota, float64(s.HoldQuota), name)
	gauge(ch, mConsumers, float64(len(s.Consumers)), name)
	for _, ci := range s.Consumers {
		l := []string{name, ci.Name, ci.Mode, strconv.Itoa(ci.Entry)}
		counter(ch, mCDelivered, ci.Delivered, l...)
		counter(ch, mCSkipped, ci.Skipped, l...)
		counter(ch, mCMissed, ci.Missed, l...)
		gauge(ch, mCLag, float64(ci.Lag), l...)
		gauge(ch, mCHeld, float64(ci.Held), l...)
		gauge(ch, mCLatency, time.Duration(ci.LatencyNs).Seconds(), l...)
		counter(ch, mCBlock, ci.BlockDrops, l...)
		counter(ch, mCRevokedH, ci.RevokedHolds, l...)
		counter(ch, mCRevokedSeen, ci.RevokedSeen, l...)
		gauge(ch, mCEvicted, b2f(ci.State == "evicted"), append(l, labelValue(ci.EvictReason))...)
		gauge(ch, mCAttached, float64(ci.AttachedUnix)/1e9, l...)
	}
}
