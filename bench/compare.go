package bench

// Comparing two runs: frbench -compare OLD (bench/run.sh -compare OLD)
// prints, after the run, every metric the two reports both have with its
// ratio new/old, so that a regression shows.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// CompareRow is one metric in both runs.
type CompareRow struct {
	Metric string  `json:"metric"`
	Old    float64 `json:"old"`
	New    float64 `json:"new"`
	// Ratio is New/Old.
	Ratio float64 `json:"ratio"`
	// HigherBetter says which way is an improvement (rates: true;
	// latencies and costs: false).
	HigherBetter bool   `json:"higher_better"`
	Unit         string `json:"unit"` // "ns" or "fps"
}

// LoadReport reads a results.json, or the results.json in a directory.
func LoadReport(path string) (*Report, error) {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = filepath.Join(path, "results.json")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load report: %w", err)
	}
	var rep Report
	if err := json.Unmarshal(b, &rep); err != nil {
		return nil, fmt.Errorf("load report %s: %w", path, err)
	}
	return &rep, nil
}

type metric struct {
	v      float64
	higher bool
	unit   string
}

// metrics flattens a report into named values, in the report's order.
func metrics(rep *Report) ([]string, map[string]metric) {
	var names []string
	m := map[string]metric{}
	add := func(name string, v float64, higher bool, unit string) {
		if v <= 0 {
			return
		}
		if _, dup := m[name]; !dup {
			names = append(names, name)
		}
		m[name] = metric{v, higher, unit}
	}
	lat := func(prefix string, p Percentiles) {
		add(prefix+" p50", float64(p.P50), false, "ns")
		add(prefix+" p99", float64(p.P99), false, "ns")
		add(prefix+" p99.9", float64(p.P999), false, "ns")
	}
	if rep.Ping != nil {
		lat("cache-line ping", rep.Ping.OneWay)
	}
	if rep.FutexPing != nil {
		lat("C futex ping", rep.FutexPing.OneWay)
	}
	for _, r := range rep.Latency {
		name := fmt.Sprintf("latency %s %s", sizeName(r.Payload), r.Wait)
		lat(name, r.Latency)
		add(name+" publish p50", float64(r.Publish.P50), false, "ns")
	}
	for _, r := range rep.Throughput {
		name := fmt.Sprintf("throughput %s x%d %s %s %d slots", sizeName(r.Payload), r.Consumers, r.Mode, r.Read, r.Slots)
		add(name+" fps", r.FPS, true, "fps")
	}
	for _, r := range rep.Baselines {
		add(fmt.Sprintf("baseline %s %s x%d %s fps", r.Transport, sizeName(r.Payload), r.Receivers, r.Read), r.FPS, true, "fps")
	}
	for _, r := range rep.Scale {
		name := fmt.Sprintf("scale x%d %s", r.Consumers, r.Wait)
		add(name+" publish p50", float64(r.Publish.P50), false, "ns")
		add(name+" producer CPU/frame", r.Producer.CPUPerFrameNs, false, "ns")
		lat(name+" latency", r.Latency)
		add(name+" last awake p50", float64(r.LastAwake.P50), false, "ns")
		add(name+" last awake p99", float64(r.LastAwake.P99), false, "ns")
	}
	return names, m
}

// Compare returns every metric both reports have, in the new report's order.
func Compare(old, cur *Report) []CompareRow {
	_, om := metrics(old)
	names, nm := metrics(cur)
	var rows []CompareRow
	for _, n := range names {
		o, ok := om[n]
		if !ok {
			continue
		}
		c := nm[n]
		rows = append(rows, CompareRow{Metric: n, Old: o.v, New: c.v, Ratio: c.v / o.v, HigherBetter: c.higher, Unit: c.unit})
	}
	return rows
}

// CompareMarkdown renders Compare's rows as a table. A ratio more than 10%
// the wrong way is marked "worse", more than 10% the right way "better"
// (a run on a shared machine moves by more than that: read the marks as
// where to look, not as verdicts).
func CompareMarkdown(oldName string, rows []CompareRow) string {
	var b strings.Builder
	fmt.Fprintf(&b, "## Compared with %s\n\n", oldName)
	if len(rows) == 0 {
		b.WriteString("No metric in common.\n")
		return b.String()
	}
	b.WriteString("| metric | old | new | new/old | |\n|---|---|---|---|---|\n")
	for _, r := range rows {
		f := func(v float64) string {
			if r.Unit == "fps" {
				return fps(v)
			}
			return nsf(v)
		}
		mark := ""
		better := r.Ratio < 1
		if r.HigherBetter {
			better = r.Ratio > 1
		}
		if r.Ratio > 1.1 || r.Ratio < 1/1.1 {
			mark = "worse"
			if better {
				mark = "better"
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %.2f× | %s |\n", r.Metric, f(r.Old), f(r.New), r.Ratio, mark)
	}
	return b.String()
}
