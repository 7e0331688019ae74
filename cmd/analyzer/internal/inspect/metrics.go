package inspect

// The analyzer's own Prometheus metrics (analyzer -metrics ADDR): what it
// analyzed and found, and how long from capture to result. The ring's
// counters (delivered, lag, ...) are ringctl serve's; these are the ones
// only the analyzer knows. Updating them allocates nothing (atomic adds).

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts what Run does, for Prometheus. A nil *Metrics counts
// nothing.
type Metrics struct {
	frames, errors, defects, defectFrames prometheus.Counter
	latency                               prometheus.Histogram
	skipped, missed                       atomic.Uint64
	cs                                    []prometheus.Collector
}

// NewMetrics returns the analyzer's metrics, labelled with the ring's name.
func NewMetrics(ring string) *Metrics {
	l := prometheus.Labels{"ring": ring}
	m := &Metrics{
		frames: prometheus.NewCounter(prometheus.CounterOpts{Name: "framering_analyzer_frames_total", ConstLabels: l,
			Help: "Frames analyzed."}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{Name: "framering_analyzer_errors_total", ConstLabels: l,
			Help: "Frames that could not be analyzed (a geometry or format the analysis refuses)."}),
		defects: prometheus.NewCounter(prometheus.CounterOpts{Name: "framering_analyzer_defects_total", ConstLabels: l,
			Help: "Defects found, over all frames."}),
		defectFrames: prometheus.NewCounter(prometheus.CounterOpts{Name: "framering_analyzer_defect_frames_total", ConstLabels: l,
			Help: "Frames with at least one defect."}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "framering_analyzer_latency_seconds", ConstLabels: l,
			Help:    "Time from a frame's capture to the end of its analysis (frames with a capture timestamp).",
			Buckets: prometheus.ExponentialBuckets(25e-6, 2, 16)}), // 25 µs .. 0.8 s
	}
	skipped := prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "framering_analyzer_frames_skipped_total", ConstLabels: l,
		Help: "Frames the analyzer passed over for a newer one (lossy mode)."}, func() float64 { return float64(m.skipped.Load()) })
	missed := prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "framering_analyzer_frames_missed_total", ConstLabels: l,
		Help: "Frames overwritten before the analyzer could take them."}, func() float64 { return float64(m.missed.Load()) })
	m.cs = []prometheus.Collector{m.frames, m.errors, m.defects, m.defectFrames, m.latency, skipped, missed}
	return m
}

// Collectors returns the collectors to register.
func (m *Metrics) Collectors() []prometheus.Collector { return m.cs }

// observe counts one Inspect's outcome.
func (m *Metrics) observe(rec *Record, err error) {
	if m == nil {
		return
	}
	m.skipped.Store(rec.SkippedTotal)
	m.missed.Store(rec.MissedTotal)
	if err != nil {
		m.errors.Inc()
		return
	}
	m.frames.Inc()
	if rec.DefectCount > 0 {
		m.defects.Add(float64(rec.DefectCount))
		m.defectFrames.Inc()
	}
	if rec.LatencyNs >= 0 {
		m.latency.Observe(float64(rec.LatencyNs) / 1e9)
	}
}
