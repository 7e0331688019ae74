package archiver

// The archiver's own Prometheus metrics (archiver run -metrics ADDR): what
// it stored, what it lost and why, how often it synced, and the disk space
// left. A scrape reads the run's counters under the archiver's lock (the
// same ones its summary reports) and statfs(2) of the archive directory;
// the archive loop does nothing more per frame for it.

import (
	"sort"
	"sync/atomic"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics exports a run's counters. Pass it in Config.Metrics and register
// it (it is a prometheus.Collector); before Run starts, and after a run
// ends, it still exports the disk space and the last counters.
type Metrics struct {
	dir string
	a   atomic.Pointer[archiver]

	descs map[string]*prometheus.Desc
}

type metricDef struct {
	name, help string
	counter    bool
	value      func(*Summary) float64
}

var archiverMetrics = []metricDef{
	{"frames_received_total", "Frames the ring delivered to the archiver.", true, func(s *Summary) float64 { return float64(s.Received) }},
	{"frames_archived_total", "Frames appended to the archive.", true, func(s *Summary) float64 { return float64(s.Stored) }},
	{"frame_bytes_total", "Frame bytes archived, uncompressed.", true, func(s *Summary) float64 { return float64(s.Bytes) }},
	{"written_bytes_total", "Bytes appended to archive segments (records, compressed payloads, gap records).", true, func(s *Summary) float64 { return float64(s.ArchiveSize) }},
	{"fsyncs_total", "fsync calls on archive segments.", true, func(s *Summary) float64 { return float64(s.Fsyncs) }},
	{"fsync_errors_total", "fsync calls that failed (retried at the next trigger).", true, func(s *Summary) float64 { return float64(s.SyncErrors) }},
	{"frames_lost_recorded_total", "Lost frames whose gap records are in the archive.", true, func(s *Summary) float64 { return float64(s.Recorded) }},
	{"frames_lost_unrecorded", "Lost frames whose gap records are not written yet (the disk is full).", false, func(s *Summary) float64 { return float64(s.LostTotal - s.Recorded) }},
	{"gap_records_total", "Gap records appended.", true, func(s *Summary) float64 { return float64(s.GapRecords) }},
	{"segments_created_total", "Archive segments created.", true, func(s *Summary) float64 { return float64(s.Segments) }},
	{"disk_full_refusals_total", "Appends refused because the disk was full.", true, func(s *Summary) float64 { return float64(s.DiskFull) }},
	{"evictions_total", "Times the producer evicted the archiver.", true, func(s *Summary) float64 { return float64(s.Evictions) }},
	{"attaches_total", "Times the archiver attached to the ring.", true, func(s *Summary) float64 { return float64(s.Attaches) }},
	{"producer_restarts_total", "Producer restarts (new epochs) the archiver followed.", true, func(s *Summary) float64 { return float64(s.Restarts) }},
	{"retention_deleted_segments_total", "Segments retention deleted (deliberate, not a loss).", true, func(s *Summary) float64 { return float64(s.Deleted.Segments) }},
	{"retention_deleted_frames_total", "Frames in the segments retention deleted.", true, func(s *Summary) float64 { return float64(s.Deleted.Frames) }},
	{"retention_deleted_bytes_total", "Bytes of the segments retention deleted.", true, func(s *Summary) float64 { return float64(s.Deleted.Bytes) }},
}

// NewMetrics returns the metrics of an archiver of ring that archives into
// dir.
func NewMetrics(ring, dir string) *Metrics {
	l := prometheus.Labels{"ring": ring}
	m := &Metrics{dir: dir, descs: map[string]*prometheus.Desc{}}
	for _, d := range archiverMetrics {
		m.descs[d.name] = prometheus.NewDesc("framering_archiver_"+d.name, d.help, nil, l)
	}
	m.descs["lost"] = prometheus.NewDesc("framering_archiver_frames_lost_total",
		"Frames lost, by cause (each is a gap record in the archive, or pending while the disk is full).", []string{"cause"}, l)
	m.descs["free"] = prometheus.NewDesc("framering_archiver_disk_free_bytes",
		"Bytes available to the archiver on the archive's filesystem.", nil, l)
	m.descs["size"] = prometheus.NewDesc("framering_archiver_disk_size_bytes", "Size of the archive's filesystem.", nil, l)
	return m
}

// bind makes m export a's counters.
func (m *Metrics) bind(a *archiver) {
	if m != nil {
		m.a.Store(a)
	}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range m.descs {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(m.dir, &st); err == nil {
		ch <- prometheus.MustNewConstMetric(m.descs["free"], prometheus.GaugeValue, float64(st.Bavail)*float64(st.Bsize))
		ch <- prometheus.MustNewConstMetric(m.descs["size"], prometheus.GaugeValue, float64(st.Blocks)*float64(st.Bsize))
	}
	a := m.a.Load()
	if a == nil {
		return
	}
	s := a.summary()
	for _, d := range archiverMetrics {
		t := prometheus.GaugeValue
		if d.counter {
			t = prometheus.CounterValue
		}
		ch <- prometheus.MustNewConstMetric(m.descs[d.name], t, d.value(s))
	}
	causes := make([]string, 0, len(s.Lost))
	for c := range s.Lost {
		causes = append(causes, c)
	}
	sort.Strings(causes)
	for _, c := range causes {
		ch <- prometheus.MustNewConstMetric(m.descs["lost"], prometheus.CounterValue, float64(s.Lost[c]), c)
	}
}
