package archive_test

// Crash consistency with real processes: the test binary re-executes itself
// as a writer (TestCrashChild, gated by FRAMERING_ARCHIVE_CHILD=1) that
// appends pattern frames and reports every completed fsync on stdout; the
// parent kills it with SIGKILL at a random moment and checks what survived.

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/framering/framering/archive"
)

const (
	envChild = "FRAMERING_ARCHIVE_CHILD"
	envDir   = "FRAMERING_ARCHIVE_DIR"
	envCodec = "FRAMERING_ARCHIVE_CODEC"
	envSync  = "FRAMERING_ARCHIVE_SYNC"     // SyncPolicy.Records
	envIval  = "FRAMERING_ARCHIVE_INTERVAL" // SyncPolicy.Interval (time.ParseDuration), empty for none
	envKeep  = "FRAMERING_ARCHIVE_KEEP"     // Retention.MaxBytes, empty for none
	envHold  = "FRAMERING_ARCHIVE_HOLD"     // "1": report "retiring" and pause after retention moved the manifest, before it deletes
)

// crashSegmentSize is small so that children rotate often and get killed
// around rotations too.
const crashSegmentSize = 192 << 10

// TestCrashChild is the writer process of the crash tests. It never returns
// on its own: it appends until it is killed.
func TestCrashChild(t *testing.T) {
	if os.Getenv(envChild) != "1" {
		t.Skip("child process of TestCrashRecovery; runs only when re-executed")
	}
	codec, _ := strconv.Atoi(os.Getenv(envCodec))
	every, _ := strconv.Atoi(os.Getenv(envSync))
	var iv time.Duration
	if s := os.Getenv(envIval); s != "" {
		iv, _ = time.ParseDuration(s)
	}
	var ret archive.Retention
	if s := os.Getenv(envKeep); s != "" {
		ret.MaxBytes, _ = strconv.ParseInt(s, 10, 64)
		ret.CheckEvery = time.Millisecond
	}
	if os.Getenv(envHold) == "1" {
		archive.SetRetentionHook(func() {
			fmt.Println("retiring")
			time.Sleep(time.Second) // the parent kills it meanwhile
		})
	}
	w, err := archive.Open(os.Getenv(envDir), archive.Options{
		MaxSegmentSize: crashSegmentSize,
		Codec:          archive.Codec(codec),
		Sync:           archive.SyncPolicy{Records: every, Interval: iv},
		Retention:      ret,
	})
	if err != nil {
		fmt.Printf("error %v\n", err)
		os.Exit(3)
	}
	fmt.Printf("open %d\n", w.Stats().NextSeq)
	durable := w.Stats().DurableSeq
	for {
		id := w.Stats().NextSeq
		m, b := patternFrame(t, id)
		if _, err := w.Append(m, b); err != nil {
			fmt.Printf("error %v\n", err)
			os.Exit(3)
		}
		if d := w.Stats().DurableSeq; d != durable {
			durable = d
			fmt.Printf("durable %d\n", d) // every seq below d is on disk
		}
	}
}

// childCmd is the command of a writer child on dir (TestCrashChild).
func childCmd(dir string, codec archive.Codec, p archive.SyncPolicy) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), envChild+"=1", envDir+"="+dir,
		envCodec+"="+strconv.Itoa(int(codec)), envSync+"="+strconv.Itoa(p.Records))
	if p.Interval > 0 {
		cmd.Env = append(cmd.Env, envIval+"="+p.Interval.String())
	}
	return cmd
}

// crashPolicy picks a child's fsync policy: every few records, and in the
// second half of the rounds also from the interval goroutine (alone or with
// the record trigger), so kills land during background fsyncs too.
func crashPolicy(rng *rand.Rand, round, rounds int) archive.SyncPolicy {
	p := archive.SyncPolicy{Records: 1 + rng.IntN(8)}
	if round >= rounds/2 {
		p.Interval = time.Millisecond
		if rng.IntN(2) == 0 {
			p.Records = 0
		}
	}
	return p
}

type childRun struct {
	openSeq uint64 // NextSeq the child reported after Open
	durable uint64 // last durable seq the child reported
	lines   int
}

// runChild starts a writer child on dir, waits until it has reported
// `reports` fsyncs (plus a random pause), kills it with SIGKILL and returns
// what it reported.
func runChild(t *testing.T, dir string, rng *rand.Rand, reports int, codec archive.Codec, p archive.SyncPolicy) childRun {
	t.Helper()
	cmd := childCmd(dir, codec, p)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var run childRun
	sc := bufio.NewScanner(out)
	killed := false
	kill := func() {
		if !killed {
			killed = true
			cmd.Process.Kill() // SIGKILL
		}
	}
	defer kill()
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "open":
			run.openSeq, _ = strconv.ParseUint(f[1], 10, 64)
		case "durable":
			run.durable, _ = strconv.ParseUint(f[1], 10, 64)
			run.lines++
			if run.lines == reports {
				// Kill at a random point after this report: the child keeps
				// appending during the pause, so the kill lands mid-record,
				// mid-fsync or mid-rotation.
				time.Sleep(time.Duration(rng.IntN(3000)) * time.Microsecond)
				kill()
			}
		case "error":
			t.Fatalf("child: %s", sc.Text())
		}
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die of SIGKILL: %v", err)
	}
	return run
}

// checkAfterCrash verifies the archive a killed child left, recovers it as
// the next writer would, and returns the next seq.
func checkAfterCrash(t *testing.T, dir string, run childRun, maxRecord int64) uint64 {
	t.Helper()
	// Before recovery: everything but a torn tail is intact, and every seq
	// below the last reported fsync is there.
	rep, err := archive.Verify(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		var bad []archive.SegmentReport
		for _, s := range rep.Segments {
			if s.Err != nil {
				bad = append(bad, s)
			}
		}
		t.Fatalf("archive damaged beyond a torn tail: corrupt %v, missing %v, bad segments %+v", rep.Corrupt, rep.Missing, bad)
	}
	if rep.Records > 0 && (rep.FirstSeq != 0 || rep.LastSeq+1 < run.durable) {
		t.Fatalf("records %d..%d, child reported seq < %d durable", rep.FirstSeq, rep.LastSeq, run.durable)
	}
	if rep.Records == 0 && run.durable > 0 {
		t.Fatalf("no records, child reported seq < %d durable", run.durable)
	}

	w, err := archive.Open(dir, archive.Options{MaxSegmentSize: crashSegmentSize, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	rc := w.Recovery()
	if len(rc.Corrupt) != 0 {
		t.Fatalf("recovery found damage before the tail: %+v", rc.Corrupt)
	}
	if rc.CutBytes > maxRecord {
		t.Fatalf("recovery cut %d bytes, more than one record (%d): %v", rc.CutBytes, maxRecord, rc.CutReason)
	}
	if (rep.TornTail != nil) != (rc.CutOffset >= 0) || (rep.TornTail != nil && rep.TornTail.Offset != rc.CutOffset) {
		t.Fatalf("verify saw torn tail %+v, recovery cut at %d", rep.TornTail, rc.CutOffset)
	}
	next := rc.NextSeq
	if next < run.durable || (rep.Records > 0 && next != rep.LastSeq+1) {
		t.Fatalf("recovered next seq %d; durable %d, last record %d", next, run.durable, rep.LastSeq)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if rc.CutOffset >= 0 {
		t.Logf("recovery cut %d bytes at %d of segment %d: %v", rc.CutBytes, rc.CutOffset, rc.Segment, rc.CutReason)
	}

	// After recovery: every record is there, byte-identical, and nothing is torn.
	rep = mustVerifyOK(t, dir)
	if rep.TornTail != nil || (next > 0 && rep.LastSeq+1 != next) {
		t.Fatalf("after recovery: torn tail %+v, last seq %d, next %d", rep.TornTail, rep.LastSeq, next)
	}
	for _, s := range rep.Segments[len(rep.Segments)-1:] {
		if s.IndexErr != nil {
			t.Fatalf("index of the recovered segment: %v", s.IndexErr)
		}
	}
	recs, errs := readAll(t, dir)
	if len(errs) != 0 || uint64(len(recs)) != next {
		t.Fatalf("read %d records (want %d), errors %v", len(recs), next, errs)
	}
	for i, rec := range recs {
		if rec.Seq != uint64(i) {
			t.Fatalf("record %d has seq %d", i, rec.Seq)
		}
		checkFrame(t, rec, rec.Seq)
	}
	return next
}

func maxRecordSize() int64 {
	var m int64
	for _, g := range testGeoms {
		m = max(m, int64(g.Size()))
	}
	return m + 80 + 8
}

func TestCrashRecovery(t *testing.T) {
	if os.Getenv(envChild) == "1" {
		t.Skip("inside a child")
	}
	rounds := 6
	if testing.Short() {
		rounds = 3
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	dir := t.TempDir()
	next := uint64(0)
	for r := 0; r < rounds; r++ {
		codec := archive.Codec(r % 3)
		p := crashPolicy(rng, r, rounds)
		run := runChild(t, dir, rng, 1+rng.IntN(40), codec, p)
		if run.openSeq != next {
			t.Fatalf("round %d: child opened at seq %d, want %d", r, run.openSeq, next)
		}
		next = checkAfterCrash(t, dir, run, maxRecordSize())
		t.Logf("round %d (%v, fsync %+v): child reported durable < %d, recovered next seq %d", r, codec, p, run.durable, next)
	}
	// Appending continues with the next seq after the last crash.
	w := openW(t, dir, archive.Options{MaxSegmentSize: crashSegmentSize})
	appendFrames(t, w, 2)
	w.Close()
	rep := mustVerifyOK(t, dir)
	if rep.LastSeq != next+1 {
		t.Fatalf("last seq %d, want %d", rep.LastSeq, next+1)
	}
}

// TestCrashSoak kills writers many times at random moments, including while
// they recover the previous crash. Run with FRAMERING_SOAK=1 (not -short).
func TestCrashSoak(t *testing.T) {
	if testing.Short() || os.Getenv("FRAMERING_SOAK") != "1" {
		t.Skip("long randomized crash soak: set FRAMERING_SOAK=1 and do not pass -short")
	}
	if os.Getenv(envChild) == "1" {
		t.Skip("inside a child")
	}
	rounds := 200
	if s := os.Getenv("FRAMERING_SOAK_ROUNDS"); s != "" {
		rounds, _ = strconv.Atoi(s)
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 2))
	dir := t.TempDir()
	var last childRun
	for r := 0; r < rounds; r++ {
		// reports == 0 never matches: the child is killed from a timer instead,
		// at any moment, Open and recovery included.
		run := runChildTimed(t, dir, rng, archive.Codec(rng.IntN(3)), crashPolicy(rng, r, rounds))
		if run.durable > last.durable || run.lines > 0 {
			last = run
		}
		if r%10 == 9 {
			checkAfterCrash(t, dir, last, maxRecordSize())
			last = childRun{}
		}
	}
	checkAfterCrash(t, dir, last, maxRecordSize())
}

// runChildTimed kills the child after a random delay from its start, whatever
// it is doing.
func runChildTimed(t *testing.T, dir string, rng *rand.Rand, codec archive.Codec, p archive.SyncPolicy) childRun {
	t.Helper()
	cmd := childCmd(dir, codec, p)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(time.Duration(rng.IntN(150_000))*time.Microsecond, func() { cmd.Process.Kill() })
	defer timer.Stop()
	var run childRun
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == "durable" {
			run.durable, _ = strconv.ParseUint(f[1], 10, 64)
			run.lines++
		}
		if len(f) > 0 && f[0] == "error" {
			t.Fatalf("child: %s", sc.Text())
		}
	}
	cmd.Wait()
	return run
}
