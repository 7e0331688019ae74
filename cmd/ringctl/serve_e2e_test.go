package main

// ringctl serve against real processes: a producer, an analyzer and an
// archiver (each with its own -metrics endpoint) and the server, all
// separate binaries on one ring.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/framering/framering/cmd/ringctl/internal/serve"
	"github.com/framering/framering/loss"
	"github.com/framering/framering/ringstat"
)

// binDir holds the commands the end-to-end tests run, built once per test
// binary by buildAll and removed by TestMain.
var binDir string

var buildAll = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "framering-serve-bin-")
	if err != nil {
		return "", err
	}
	binDir = dir
	cmd := exec.Command("go", "build", "-o", dir+"/", "github.com/framering/framering/cmd/producer",
		"github.com/framering/framering/cmd/analyzer", "github.com/framering/framering/cmd/archiver",
		"github.com/framering/framering/cmd/ringctl")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return dir, nil
})

func binaries(t *testing.T) string {
	t.Helper()
	dir, err := buildAll()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// process is a started command whose stderr (JSON log lines) is kept and
// watched for an address.
type process struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	stdout bytes.Buffer
	mu     sync.Mutex
	log    bytes.Buffer
	addr   chan string
	done   chan struct{}
}

// start runs bin with args; key names the JSON log attribute that carries
// the process's HTTP address ("" for none).
func start(t *testing.T, bin, key string, args ...string) *process {
	t.Helper()
	p := &process{t: t, name: filepath.Base(bin), addr: make(chan string, 1), done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout = &p.stdout
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.log.Write(append(sc.Bytes(), '\n'))
			p.mu.Unlock()
			var m map[string]any
			if key != "" && json.Unmarshal(sc.Bytes(), &m) == nil {
				if a, ok := m[key].(string); ok && strings.HasPrefix(a, "http://") {
					select {
					case p.addr <- strings.TrimSuffix(strings.TrimSuffix(a, "/metrics"), "/"):
					default:
					}
				}
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Signal(syscall.SIGCONT)
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func (p *process) logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

func (p *process) url() string {
	p.t.Helper()
	select {
	case a := <-p.addr:
		p.addr <- a
		return a
	case <-p.done:
		p.t.Fatalf("%s exited: %s", p.name, p.logs())
	case <-time.After(30 * time.Second):
		p.t.Fatalf("%s logged no address: %s", p.name, p.logs())
	}
	return ""
}

// stop sends SIGTERM and waits for a clean exit.
func (p *process) stop() {
	p.t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.t.Fatalf("%s did not stop: %s", p.name, p.logs())
	}
	if c := p.cmd.ProcessState.ExitCode(); c != 0 {
		p.t.Fatalf("%s exit %d: %s", p.name, c, p.logs())
	}
}

// metrics is one scrape: value by series ("name{a="x",b="y"}", labels sorted).
type metrics map[string]float64

func series(name string, labels ...string) string {
	if len(labels) == 0 {
		return name
	}
	var kv []string
	for i := 0; i+1 < len(labels); i += 2 {
		kv = append(kv, labels[i]+"="+strconv.Quote(labels[i+1]))
	}
	sort.Strings(kv)
	return name + "{" + strings.Join(kv, ",") + "}"
}

func parseMetrics(t *testing.T, body []byte) metrics {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parse metrics: %v\n%s", err, body)
	}
	out := metrics{}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			var l []string
			for _, lp := range m.GetLabel() {
				l = append(l, lp.GetName(), lp.GetValue())
			}
			switch {
			case m.Counter != nil:
				out[series(name, l...)] = m.GetCounter().GetValue()
			case m.Gauge != nil:
				out[series(name, l...)] = m.GetGauge().GetValue()
			case m.Histogram != nil:
				out[series(name+"_count", l...)] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

// scrape GETs url/metrics, checks it with promtool, and parses it.
func scrape(t *testing.T, url string) metrics {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("scrape %s: %d %v", url, resp.StatusCode, err)
	}
	cmd := exec.Command("promtool", "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics on %s: %v\n%s", url, err, out)
	}
	return parseMetrics(t, body)
}

func (m metrics) get(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	v, ok := m[series(name, labels...)]
	if !ok {
		t.Fatalf("no series %s", series(name, labels...))
	}
	return v
}

func show(t *testing.T, ring string) ringstat.Report {
	t.Helper()
	var rep ringstat.Report
	if err := json.Unmarshal(ctl(t, "show", "-ring", ring, "-json", "-window", "0"), &rep); err != nil {
		t.Fatal(err)
	}
	return rep
}

// between checks that every counter of the scrape lies between the two
// ringctl show -json reports taken around it.
func between(t *testing.T, ring string, before, after ringstat.Report, m metrics) {
	t.Helper()
	check := func(what string, lo, v, hi float64) {
		t.Helper()
		if v < lo || v > hi {
			t.Errorf("%s = %v, not within [%v, %v] of ringctl show", what, v, lo, hi)
		}
	}
	f := func(u uint64) float64 { return float64(u) }
	r := []string{"ring", ring}
	check("published", f(before.Producer.Published), m.get(t, "framering_frames_published_total", r...), f(after.Producer.Published))
	for _, c := range loss.Known() {
		if c.Where() != loss.Ring || c == loss.Several {
			continue
		}
		check("dropped "+c.String(), f(before.Drops.ByCause[c.String()]),
			m.get(t, "framering_frames_dropped_total", "ring", ring, "cause", c.String()), f(after.Drops.ByCause[c.String()]))
	}
	for _, x := range []struct {
		name   string
		lo, hi uint64
	}{
		{"framering_frames_copied_total", before.Copies, after.Copies},
		{"framering_consumer_evictions_total", before.Evictions, after.Evictions},
		{"framering_consumer_detaches_total", before.Detaches, after.Detaches},
		{"framering_consumer_reclaims_total", before.Reclaims, after.Reclaims},
		{"framering_reclaimed_holds_total", before.ReclaimedHolds, after.ReclaimedHolds},
		{"framering_revoked_holds_total", before.RevokedHolds, after.RevokedHolds},
	} {
		check(x.name, f(x.lo), m.get(t, x.name, r...), f(x.hi))
	}
	if len(before.Consumers) != len(after.Consumers) {
		t.Fatalf("consumers changed between the reports: %d, %d", len(before.Consumers), len(after.Consumers))
	}
	for i, b := range before.Consumers {
		a := after.Consumers[i]
		l := []string{"ring", ring, "consumer", b.Name, "mode", b.Mode, "entry", strconv.Itoa(b.Entry)}
		for _, x := range []struct {
			name   string
			lo, hi uint64
		}{
			{"framering_consumer_frames_delivered_total", b.Delivered, a.Delivered},
			{"framering_consumer_frames_skipped_total", b.Skipped, a.Skipped},
			{"framering_consumer_frames_missed_total", b.Missed, a.Missed},
			{"framering_consumer_block_drops_total", b.BlockDrops, a.BlockDrops},
			{"framering_consumer_revoked_holds_total", b.RevokedHolds, a.RevokedHolds},
			{"framering_consumer_revoked_seen_total", b.RevokedSeen, a.RevokedSeen},
		} {
			check(b.Name+" "+x.name, f(x.lo), m.get(t, x.name, l...), f(x.hi))
		}
	}
}

// TestServeMetricsEndToEnd: during a running pipeline of real processes,
// every counter ringctl serve exports lies between ringctl show -json
// reports taken just before and after the scrape; a stopped (SIGSTOP)
// producer is reported stalled, and, to a server that meets it stopped,
// through /proc; after a clean stop the analyzer's and archiver's own
// metrics equal their summaries. promtool checks every scrape.
func TestServeMetricsEndToEnd(t *testing.T) {
	bin := binaries(t)
	dir := t.TempDir()
	const ring = "e2e"
	j := []string{"-log-format", "json"}
	prod := start(t, filepath.Join(bin, "producer"), "", append(j, "-ring", ring, "-source", "synthetic", "-defects",
		"-width", "320", "-height", "240", "-fps", "100", "-slots", "16", "-json", "-stats-interval", "0")...)
	an := start(t, filepath.Join(bin, "analyzer"), "addr", append(j, "-ring", ring, "-out", filepath.Join(dir, "analysis.jsonl"),
		"-metrics", "127.0.0.1:0")...)
	ar := start(t, filepath.Join(bin, "archiver"), "addr", append([]string{"run"}, append(j, "-ring", ring, "-dir",
		filepath.Join(dir, "archive"), "-metrics", "127.0.0.1:0", "-stats-interval", "0")...)...)
	srv := start(t, filepath.Join(bin, "ringctl"), "metrics", append([]string{"serve"}, append(j, "-listen", "127.0.0.1:0",
		"-interval", "200ms")...)...)
	url := srv.url()

	// Wait for the server to see the ring with both consumers working.
	deadline := time.Now().Add(30 * time.Second)
	for {
		m := scrape(t, url)
		if m[series("framering_consumers", "ring", ring)] == 2 && m[series("framering_frames_published_total", "ring", ring)] > 30 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server never saw %s with two consumers: %v\nserver: %s\nproducer: %s", ring, m, srv.logs(), prod.logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
	for range 3 {
		before := show(t, ring)
		m := scrape(t, url)
		am, rm := scrape(t, an.url()), scrape(t, ar.url())
		after := show(t, ring)
		between(t, ring, before, after, m)
		if m.get(t, "framering_ring_up", "ring", ring) != 1 || m.get(t, "framering_producer_stalled", "ring", ring) != 0 ||
			m.get(t, "framering_source_state", "ring", ring, "state", "acquiring") != 1 {
			t.Fatalf("ring state: %v", m)
		}
		var slots float64
		for _, s := range []string{"free", "writing", "published", "held"} {
			slots += m.get(t, "framering_slots", "ring", ring, "state", s)
		}
		if slots != 16 {
			t.Fatalf("slot states sum to %v of 16", slots)
		}
		// The consumers' own metrics are within what the ring delivered them.
		delivered := map[string]float64{}
		for _, c := range after.Consumers {
			delivered[c.Name] = float64(c.Delivered)
		}
		if v := am.get(t, "framering_analyzer_frames_total", "ring", ring); v > delivered["analyzer"] {
			t.Fatalf("analyzer analyzed %v of %v delivered", v, delivered["analyzer"])
		}
		if v := rm.get(t, "framering_archiver_frames_archived_total", "ring", ring); v > delivered["archiver"] {
			t.Fatalf("archiver archived %v of %v delivered", v, delivered["archiver"])
		}
		time.Sleep(150 * time.Millisecond)
	}

	// A stopped producer: the server, attached, reports it stalled with its
	// heartbeat age; a server that meets it stopped reads it through /proc.
	if err := prod.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	var m metrics
	for deadline := time.Now().Add(20 * time.Second); ; {
		m = scrape(t, url)
		if m.get(t, "framering_producer_stalled", "ring", ring) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a stopped producer is not stalled: heartbeat age %v", m.get(t, "framering_producer_heartbeat_age_seconds", "ring", ring))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if age := m.get(t, "framering_producer_heartbeat_age_seconds", "ring", ring); age < ringstat.StallAfter.Seconds() {
		t.Fatalf("stalled with a heartbeat %vs old", age)
	}
	stopped := show(t, ring) // through /proc: the producer does not answer
	if !stopped.Unresponsive || !stopped.Producer.Stalled {
		t.Fatalf("show of a stopped producer: unresponsive %v stalled %v", stopped.Unresponsive, stopped.Producer.Stalled)
	}
	fresh := serve.New(serve.Config{})
	fresh.Sample(context.Background()) // its attach times out: Inspect
	hs := httptest.NewServer(fresh.Handler())
	fm := scrape(t, hs.URL)
	hs.Close()
	fresh.Close()
	if fm.get(t, "framering_ring_status", "ring", ring, "status", "unresponsive") != 1 || fm.get(t, "framering_ring_up", "ring", ring) != 1 ||
		fm.get(t, "framering_frames_published_total", "ring", ring) != float64(stopped.Producer.Published) ||
		fm.get(t, "framering_producer_stalled", "ring", ring) != 1 {
		t.Fatalf("a server meeting a stopped producer: %v (show: published %d)", fm, stopped.Producer.Published)
	}
	if err := prod.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)

	// A clean stop: the producer first; the consumers drain and wait for a
	// new producer, so their counters stand still until they are stopped.
	last := scrape(t, url).get(t, "framering_frames_published_total", "ring", ring)
	prod.stop()
	var ps struct {
		Published uint64      `json:"published"`
		Frames    uint64      `json:"frames"`
		Drops     loss.Counts `json:"drops"`
	}
	if err := json.Unmarshal(prod.stdout.Bytes(), &ps); err != nil {
		t.Fatalf("producer summary %q: %v", prod.stdout.String(), err)
	}
	if last > float64(ps.Published) {
		t.Fatalf("published %v scraped, %d in the producer's summary", last, ps.Published)
	}
	var am, rm metrics
	for deadline := time.Now().Add(30 * time.Second); ; {
		rm = scrape(t, ar.url())
		if rm.get(t, "framering_archiver_frames_archived_total", "ring", ring) == float64(ps.Published) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("archiver archived %v of %d published", rm.get(t, "framering_archiver_frames_archived_total", "ring", ring), ps.Published)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		am = scrape(t, an.url())
		time.Sleep(300 * time.Millisecond)
		if am2 := scrape(t, an.url()); am2.get(t, "framering_analyzer_frames_total", "ring", ring) == am.get(t, "framering_analyzer_frames_total", "ring", ring) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the analyzer never stood still after the producer stopped")
		}
	}
	an.stop()
	ar.stop()
	srv.stop()

	// The analyzer's summary (its output's last line) and metrics agree.
	out, err := os.ReadFile(filepath.Join(dir, "analysis.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSpace(out), []byte("\n"))
	var as struct {
		Summary struct {
			Frames       uint64 `json:"frames"`
			Errors       uint64 `json:"errors"`
			Defects      uint64 `json:"defects"`
			DefectFrames uint64 `json:"defect_frames"`
			Skipped      uint64 `json:"skipped"`
			Missed       uint64 `json:"missed"`
		} `json:"summary"`
	}
	if err := json.Unmarshal(lines[len(lines)-1], &as); err != nil {
		t.Fatal(err)
	}
	s := as.Summary
	a := func(n string) float64 { return am.get(t, "framering_analyzer_"+n, "ring", ring) }
	if a("frames_total") != float64(s.Frames) || a("errors_total") != float64(s.Errors) || a("defects_total") != float64(s.Defects) ||
		a("defect_frames_total") != float64(s.DefectFrames) || a("latency_seconds_count") != float64(s.Frames) ||
		a("frames_skipped_total") > float64(s.Skipped) || a("frames_missed_total") > float64(s.Missed) || s.Frames == 0 || s.Defects == 0 {
		t.Fatalf("analyzer metrics %v, summary %+v", am, s)
	}
	// The archiver's summary (its last log line) and metrics agree; fsyncs
	// and gap records made at shutdown (a gap for frames discarded after
	// the last one) come after the last scrape, so those metrics may lag.
	var rs struct {
		Msg        string `json:"msg"`
		Stored     uint64 `json:"stored"`
		Bytes      uint64 `json:"bytes"`
		Fsyncs     uint64 `json:"fsyncs"`
		GapRecords uint64 `json:"gap_records"`
		Received   uint64 `json:"received"`
	}
	for _, l := range strings.Split(strings.TrimSpace(ar.logs()), "\n") {
		if strings.Contains(l, `"msg":"summary"`) {
			if err := json.Unmarshal([]byte(l), &rs); err != nil {
				t.Fatal(err)
			}
		}
	}
	r := func(n string) float64 { return rm.get(t, "framering_archiver_"+n, "ring", ring) }
	if rs.Msg != "summary" || r("frames_archived_total") != float64(rs.Stored) || r("frame_bytes_total") != float64(rs.Bytes) ||
		r("frames_received_total") != float64(rs.Received) || r("gap_records_total") > float64(rs.GapRecords) ||
		r("fsyncs_total") > float64(rs.Fsyncs) || rs.Stored != ps.Published || r("disk_free_bytes") <= 0 {
		t.Fatalf("archiver metrics %v, summary %+v (producer published %d)", rm, rs, ps.Published)
	}
}
