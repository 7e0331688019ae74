package main_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/framering/framering/archive"
	"github.com/framering/framering/frame"
	"github.com/framering/framering/internal/testmain"
)

// dirSample is the size of the archive's segments and indexes, and the
// newest segment holding a frame (over 4 KiB: the test's frames are 32 KiB).
// Files are looked at newest first, so a rotation (which deletes the oldest
// before the new segment gets its first record) in the middle of a sample
// can make it smaller than the archive ever was, never larger.
func dirSample(dir string) (n int64, newest int64) {
	ents, _ := os.ReadDir(dir) // sorted by name: by segment index
	newest = -1
	for i := len(ents) - 1; i >= 0; i-- {
		name := ents[i].Name()
		if !strings.HasSuffix(name, ".frseg") && !strings.HasSuffix(name, ".fridx") {
			continue
		}
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			continue // deleted since the listing
		}
		n += fi.Size()
		if strings.HasSuffix(name, ".frseg") && fi.Size() > 4<<10 && newest < 0 {
			newest, _ = strconv.ParseInt(strings.TrimSuffix(name, ".frseg"), 10, 64)
		}
	}
	return n, newest
}

// TestRetention archives as fast as the archiver takes frames into an
// archive capped at 4 MiB with 1 MiB segments (on a tmpfs, to spare the
// disk), for a few seconds, kills it with SIGKILL in the middle of its
// deletions and starts it again: the archive never exceeds the cap by more
// than one segment (the one being written) and the indexes, verifies OK at
// every check (deliberate deletions are not damage), and the archiver
// counts what it deleted. A verify pins the segments it reads and
// retention stops there (readers come first), so the bound is checked on
// the samples taken once the first rotation after a verify (which deletes
// what the pin held back) is done. FRAMERING_RETENTION_SECONDS sets the
// length (scripts/soak.sh runs it for minutes).
func TestRetention(t *testing.T) {
	secs := 6.0
	if s := os.Getenv("FRAMERING_RETENTION_SECONDS"); s != "" {
		if d, err := time.ParseDuration(s + "s"); err == nil {
			secs = d.Seconds()
		}
	}
	const seg, keep = 1 << 20, 4 << 20
	fs := testmain.SmallFS(t, "32m")
	dir := filepath.Join(fs, "archive")
	sock := filepath.Join(t.TempDir(), "ring.sock")
	geom := func(uint64) frame.Geometry { return frame.Packed(256, 128, frame.Mono8) } // 32 KiB
	tp := newProducer(t, sock, 8, 32<<10, geom, 0)
	args := []string{"-socket", sock, "-dir", dir, "-reattach=false", "-segment-size", "1MiB", "-keep-size", "4MiB", "-fsync", "interval=20ms", "-stats-interval", "0"}
	p := startArchiver(t, args...)
	tp.waitAttached(p.pid())

	// A watcher samples the archive's size as fast as it can, and verifies
	// it now and then, while frames flow.
	var (
		mu      sync.Mutex
		maxSize int64
		checks  int
		samples int
		bad     string
	)
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		last := time.Now()
		pinned := int64(-1) // the newest segment when the last verify ended
		for {
			select {
			case <-stop:
				return
			default:
			}
			n, newest := dirSample(dir)
			mu.Lock()
			if newest > pinned {
				maxSize = max(maxSize, n)
				samples++
			}
			mu.Unlock()
			if time.Since(last) > 300*time.Millisecond {
				rep, err := archive.Verify(dir)
				last = time.Now()
				_, pinned = dirSample(dir)
				mu.Lock()
				checks++
				if err == nil && !rep.OK() && bad == "" {
					bad = fmt.Sprintf("corrupt %+v, missing %+v, manifest %v", rep.Corrupt, rep.Missing, rep.ManifestErr)
				}
				mu.Unlock()
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()

	deadline := time.Now().Add(time.Duration(secs * float64(time.Second)))
	killed := false
	for time.Now().Before(deadline) {
		tp.offer(true)
		if !killed && time.Until(deadline) < time.Duration(secs*float64(time.Second))/2 && p.deletedSegments() > 2 {
			// Mid-way, while deletions go on: kill -9, start again.
			if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			p.wait(-1)
			killed = true
			p = startArchiver(t, args...)
			tp.waitAttached(p.pid())
		}
	}
	tp.waitDrained(p.pid())
	tp.close()
	sum := p.wait(0)
	close(stop)
	<-watched

	if !killed {
		t.Fatal("no retention deletion to kill the archiver in")
	}
	if bad != "" {
		t.Fatalf("verify failed during the run: %s", bad)
	}
	// The cap, the segment being written, the indexes (a few KiB).
	limit := int64(keep + seg + 64<<10)
	if maxSize > limit {
		t.Fatalf("archive reached %d bytes, cap %d + one segment", maxSize, keep)
	}
	if samples == 0 {
		t.Fatal("no sample of the archive's size outside a verify's pin")
	}
	out, err := exec.Command(archiverBin, "verify", "-json", "-dir", dir).Output()
	var rep map[string]any
	if err != nil || json.Unmarshal(out, &rep) != nil || rep["ok"] != true || rep["deleted"] == nil {
		t.Fatalf("verify at the end: %v\n%s", err, out)
	}
	if num(t, sum, "retention_deleted_segments") == 0 {
		t.Fatalf("summary %v", sum)
	}
	t.Logf("offered %d frames, largest archive %d bytes (cap %d) in %d samples, %d verifies during the run", tp.offered, maxSize, keep, samples, checks)
}

// deletedSegments counts the archiver's retention log lines so far.
func (p *proc) deletedSegments() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, l := range p.lines {
		if l["msg"] == "retention deleted segments" {
			n++
		}
	}
	return n
}
