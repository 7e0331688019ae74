package main_test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestRealProducer runs the archiver against the real cmd/producer
// (synthetic source) as a separate process, kills that producer with
// SIGKILL mid-run and starts another: the archiver re-attaches to the new
// run, and every stored frame carries a valid pattern stamp for its id.
func TestRealProducer(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "archive")
	sock := filepath.Join(t.TempDir(), "ring.sock")
	p := startArchiver(t, "-socket", sock, "-dir", dir, "-fsync", "every=16", "-stats-interval", "0")
	startProducer := func() *exec.Cmd {
		cmd := exec.Command(producerBin, "-socket", sock, "-source", "synthetic", "-width", "320", "-height", "240",
			"-fps", "400", "-slots", "8", "-stats-interval", "0", "-log-format", "json")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd
	}
	prod1 := startProducer()
	p.waitLine("attached")
	// Some frames into the archive, then the producer dies.
	waitFor(t, "frames archived", func() bool {
		return strings.Count(p.log(), `"msg":"archive opened"`) == 1 && archivedFrames(t, dir) >= 50
	})
	prod1.Process.Signal(syscall.SIGKILL)
	prod1.Wait()
	p.waitLine("the ring ended; waiting for a new producer")
	prod2 := startProducer()
	p.waitLine("producer restarted")
	before := archivedFrames(t, dir)
	waitFor(t, "frames of the second run archived", func() bool { return archivedFrames(t, dir) >= before+50 })
	prod2.Process.Signal(syscall.SIGTERM)
	prod2.Wait()
	sum := p.stop(syscall.SIGTERM)
	if got := num(t, sum, "producer_restarts"); got != 1 {
		t.Fatalf("summary: %d producer restarts", got)
	}
	if n := num(t, sum, "unrecorded"); n != 0 {
		t.Fatalf("summary: %d losses unrecorded", n)
	}
	out, code := runCmd(t, "verify", "-dir", dir, "-pattern")
	if code != 0 || !strings.Contains(out, ", 0 bad") {
		t.Fatalf("verify: exit %d\n%s", code, out)
	}
	t.Logf("%s", out)
}

// archivedFrames counts the frames an archive being written holds so far
// (a reader may run beside the writer), 0 before it exists.
func archivedFrames(t *testing.T, dir string) int {
	t.Helper()
	n, err := countFrames(dir)
	if err != nil {
		return 0 // not created yet
	}
	return n
}
