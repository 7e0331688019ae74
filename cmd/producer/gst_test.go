//go:build gst && cgo

package main

// -source gst end to end, with real processes: this command (the test
// binary re-executed as it) on a GStreamer pipeline, the real archiver
// storing every frame, and the archive compared pixel for pixel with what
// GStreamer itself writes into a file.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/framering/framering/archive"
	"github.com/framering/framering/frame"
	"github.com/framering/framering/producer"
)

func TestGstUsage(t *testing.T) {
	for _, args := range [][]string{
		{"-source", "gst"},
		{"-source", "gst", "-pipeline", "videotestsrc", "-width", "640"},
		{"-source", "gst", "-pipeline", "videotestsrc", "-format", "Mono16"},
		{"-source", "gst", "-pipeline", "videotestsrc", "-faults", "incomplete:5"},
		{"-source", "synthetic", "-pipeline", "videotestsrc"},
	} {
		var errb bytes.Buffer
		if code := run(args, io.Discard, &errb); code != exitUsage {
			t.Errorf("%q: exit %d, want %d (%s)", args, code, exitUsage, errb.String())
		}
	}
}

// jsonLines collects a child's JSON log lines and signals each new one.
type jsonLines struct {
	mu    sync.Mutex
	lines []map[string]any
	raw   bytes.Buffer
	more  chan struct{}
}

func watch(r io.Reader) *jsonLines {
	l := &jsonLines{more: make(chan struct{}, 1)}
	go func() {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var m map[string]any
			_ = json.Unmarshal(sc.Bytes(), &m)
			l.mu.Lock()
			l.raw.Write(sc.Bytes())
			l.raw.WriteByte('\n')
			if m != nil {
				l.lines = append(l.lines, m)
			}
			l.mu.Unlock()
			select {
			case l.more <- struct{}{}:
			default:
			}
		}
	}()
	return l
}

// wait blocks until a line's msg is msg.
func (l *jsonLines) wait(t *testing.T, who, msg string) {
	t.Helper()
	deadline := time.After(hangGuard)
	for {
		l.mu.Lock()
		for _, m := range l.lines {
			if m["msg"] == msg {
				l.mu.Unlock()
				return
			}
		}
		raw := l.raw.String()
		l.mu.Unlock()
		select {
		case <-l.more:
		case <-deadline:
			t.Fatalf("%s never logged %q:\n%s", who, msg, raw)
		}
	}
}

// gstLaunch writes what desc produces into a file with gst-launch-1.0
// and returns the bytes.
func gstLaunch(t *testing.T, desc string) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out.raw")
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	args := append([]string{"-q"}, strings.Fields(desc+" ! filesink location="+out)...)
	if b, err := exec.CommandContext(ctx, "gst-launch-1.0", args...).CombinedOutput(); err != nil {
		t.Fatalf("gst-launch-1.0 %s: %v\n%s", desc, err, b)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

var archiverOnce struct {
	sync.Once
	path string
	err  error
}

// archiverBin builds the real archiver once per test binary, into the
// runtime directory TestMain made.
func archiverBin(t *testing.T) string {
	t.Helper()
	archiverOnce.Do(func() {
		// TestMain's private runtime directory, removed when the tests end.
		archiverOnce.path = filepath.Join(os.Getenv("FRAMERING_RUNTIME_DIR"), "archiver")
		out, err := exec.Command("go", "build", "-o", archiverOnce.path, "github.com/framering/framering/cmd/archiver").CombinedOutput()
		if err != nil {
			archiverOnce.err = fmt.Errorf("go build archiver: %v\n%s", err, out)
		}
	})
	if archiverOnce.err != nil {
		t.Fatal(archiverOnce.err)
	}
	return archiverOnce.path
}

// TestGstToArchive runs this command with -source gst and the archiver
// as separate processes. The pipeline reads GStreamer's own videotestsrc
// frames from a FIFO (filesrc ! rawvideoparse), so the test decides when
// frames flow: the first frame makes the pipeline negotiate and the ring
// exist, the archiver attaches, then the rest follow and the FIFO's end
// is the stream's end. The producer must exit 0 on it with every frame
// published, and the archive must hold exactly GStreamer's frames, pixel
// for pixel: copied by the sink (rawvideoparse hands it its own buffers),
// and written in place by videoconvert into the ring's slots.
func TestGstToArchive(t *testing.T) {
	const n = 12
	for _, tc := range []struct {
		name    string
		src     string // GStreamer's frames, fed through the FIFO
		parse   string // the producer's pipeline after "filesrc location=FIFO blocksize=FRAME ! "
		want    string // the frames the archive must hold (the same pipeline on videotestsrc)
		geo     frame.Geometry
		copyArg string
		copies  uint64 // per frame: the sink's (its upstream wrote elsewhere), safe-copy's
	}{
		{
			name:   "gray16-padded",
			src:    "videotestsrc num-buffers=12 pattern=ball ! video/x-raw,format=GRAY16_LE,width=33,height=21",
			parse:  "rawvideoparse format=gray16-le width=33 height=21 framerate=30/1",
			want:   "videotestsrc num-buffers=12 pattern=ball ! video/x-raw,format=GRAY16_LE,width=33,height=21",
			geo:    frame.Geometry{Width: 33, Height: 21, Stride: 68, Format: frame.Mono16},
			copies: 1,
		},
		{
			name:  "rgb-to-gray8-in-place",
			src:   "videotestsrc num-buffers=12 pattern=smpte ! video/x-raw,format=RGB,width=50,height=30",
			parse: "rawvideoparse format=rgb width=50 height=30 framerate=30/1 ! videoconvert ! video/x-raw,format=GRAY8",
			want:  "videotestsrc num-buffers=12 pattern=smpte ! video/x-raw,format=RGB,width=50,height=30 ! videoconvert ! video/x-raw,format=GRAY8",
			geo:   frame.Geometry{Width: 50, Height: 30, Stride: 52, Format: frame.Mono8},
		},
		{
			name:    "rgb-safe-copy",
			src:     "videotestsrc num-buffers=12 pattern=zone-plate ! video/x-raw,format=RGB,width=64,height=48",
			parse:   "rawvideoparse format=rgb width=64 height=48 framerate=30/1",
			want:    "videotestsrc num-buffers=12 pattern=zone-plate ! video/x-raw,format=RGB,width=64,height=48",
			geo:     frame.Packed(64, 48, frame.RGB8),
			copyArg: "-copy",
			copies:  2,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			input := gstLaunch(t, tc.src)
			want := gstLaunch(t, tc.want)
			size := tc.geo.Size()
			if len(input)%n != 0 || len(want) != n*size {
				t.Fatalf("references: %d and %d bytes for %d frames of %d", len(input), len(want), n, size)
			}
			inSize := len(input) / n

			dir := t.TempDir()
			fifo := filepath.Join(dir, "frames.fifo")
			if out, err := exec.Command("mkfifo", fifo).CombinedOutput(); err != nil {
				t.Fatalf("mkfifo: %v %s", err, out)
			}
			// Read-write: the open does not wait for the producer, and
			// closing it is the only writer going away (end of stream).
			w, err := os.OpenFile(fifo, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			if _, err := w.Write(input[:inSize]); err != nil {
				t.Fatal(err)
			}

			sock := filepath.Join(dir, "ring.sock")
			arch := filepath.Join(dir, "archive")
			ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
			defer cancel()
			ac := exec.CommandContext(ctx, archiverBin(t), "run", "-socket", sock, "-dir", arch, "-frames", fmt.Sprint(n),
				"-fsync", "never", "-stats-interval", "0", "-log-format", "json")
			astderr, err := ac.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := ac.Start(); err != nil {
				t.Fatal(err)
			}
			alog := watch(astderr)

			// filesrc reads a whole block before pushing it: one frame.
			pipeline := fmt.Sprintf("filesrc location=%s blocksize=%d ! %s", fifo, inSize, tc.parse)
			args := []string{"-socket", sock, "-source", "gst", "-pipeline", pipeline,
				// Room for every frame: safe-copy drops a frame for which the
				// ring has no free slot (it never waits for a consumer).
				"-slots", fmt.Sprint(n + 2), "-json", "-stats-interval", "0", "-log-format", "json", "-exit-watch=false"}
			if tc.copyArg != "" {
				args = append(args, tc.copyArg)
			}
			pc := exec.CommandContext(ctx, os.Args[0], append([]string{"-test.run=^$", "--"}, args...)...)
			pc.Env = append(os.Environ(), roleEnv+"=main")
			var pout bytes.Buffer
			pc.Stdout = &pout
			pstderr, err := pc.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := pc.Start(); err != nil {
				t.Fatal(err)
			}
			plog := watch(pstderr)

			alog.wait(t, "archiver", "attached")
			go func() {
				w.Write(input[inSize:])
				w.Close() // the end of the stream
			}()
			if err := pc.Wait(); err != nil {
				t.Fatalf("producer: %v\n%s", err, plog.raw.String())
			}
			plog.wait(t, "producer", "the source ended")
			var st producer.Stats
			if err := json.Unmarshal(pout.Bytes(), &st); err != nil {
				t.Fatalf("summary %q: %v", pout.String(), err)
			}
			if st.Published != n || st.Frames != n || st.Source != "gst" || st.Copies != tc.copies*n {
				t.Fatalf("summary %+v", st)
			}
			if err := ac.Wait(); err != nil {
				t.Fatalf("archiver: %v\n%s", err, alog.raw.String())
			}

			r, err := archive.OpenReader(arch)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			got := 0
			for {
				rec, err := r.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if rec.Kind != archive.KindFrame {
					t.Fatalf("record %d: %+v (a loss?)", got, rec)
				}
				if rec.Meta.FrameID != uint64(got) || rec.Meta.Geometry() != tc.geo || len(rec.Payload) != size {
					t.Fatalf("frame %d: meta %+v, %d bytes, want %+v", got, rec.Meta, len(rec.Payload), tc.geo)
				}
				if !bytes.Equal(rowPixels(tc.geo, rec.Payload), rowPixels(tc.geo, want[got*size:(got+1)*size])) {
					t.Fatalf("frame %d differs from GStreamer's own", got)
				}
				got++
			}
			if got != n {
				t.Fatalf("the archive holds %d frames, want %d", got, n)
			}
		})
	}
}

// rowPixels drops row padding, which GStreamer leaves uninitialized.
func rowPixels(g frame.Geometry, b []byte) []byte {
	var out []byte
	for y := range g.Height {
		out = append(out, b[y*g.Stride:y*g.Stride+g.RowBytes()]...)
	}
	return out
}
