package main

// The web view in a real browser: headless Chromium (Debian's chromium,
// installed by scripts/setup.sh) driven with chromedp against real
// producer and ringctl serve processes.

import (
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/framering/framering/ringstat"
)

// pageState is what the page shows, read by script.
type pageState struct {
	Fetched   int64  `json:"fetched"` // when the figures shown were asked for (ms since 1970)
	Status    string `json:"status"`
	Epoch     string `json:"epoch"`
	Published string `json:"published"`
	Dropped   string `json:"dropped"`
	FrameSeq  string `json:"frame_seq"`
	FrameEp   string `json:"frame_epoch"`
	ImgWidth  int    `json:"img_width"`
	Consumers []struct {
		Entry     string `json:"entry"`
		Name      string `json:"name"`
		Delivered string `json:"delivered"`
	} `json:"consumers"`
}

const readPage = `(() => {
  const k = (n) => document.querySelector('#ring [data-k="' + n + '"]').textContent;
  const img = document.querySelector('#frame');
  return {
    fetched: +(document.querySelector('#ring').dataset.fetched || 0),
    status: k('status'), epoch: k('epoch'), published: k('published'), dropped: k('dropped'),
    frame_seq: img.dataset.seq || '', frame_epoch: img.dataset.epoch || '', img_width: img.naturalWidth,
    consumers: [...document.querySelectorAll('#consumers tbody tr')].map(tr => ({
      entry: tr.dataset.entry,
      name: tr.querySelector('[data-k="name"]').textContent,
      delivered: tr.querySelector('[data-k="delivered"]').textContent,
    })),
  };
})()`

// TestWebViewInBrowser: the page lists the ring, shows its newest frame
// and keeps refreshing it, shows counters that lie between ringctl show
// -json reports taken around the page read, and survives a producer
// restart. With FRAMERING_SCREENSHOT=PATH it saves a screenshot of the
// page there (the README's is docs/web-view.png).
func TestWebViewInBrowser(t *testing.T) {
	bin := binaries(t)
	const ring = "line1"
	startProducer := func() *process {
		return start(t, filepath.Join(bin, "producer"), "", "-log-format", "json", "-ring", ring, "-source", "synthetic",
			"-defects", "-width", "640", "-height", "480", "-format", "BayerRG8", "-fps", "30", "-stats-interval", "0")
	}
	prod := startProducer()
	start(t, filepath.Join(bin, "analyzer"), "", "-log-format", "json", "-ring", ring, "-out", os.DevNull)
	srv := start(t, filepath.Join(bin, "ringctl"), "metrics", "serve", "-log-format", "json", "-listen", "127.0.0.1:0",
		"-interval", "250ms")
	url := srv.url()

	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath("chromium"), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900))
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	if err := chromedp.Do(bctx, chromedp.Navigate(url+"/#ring="+ring)); err != nil {
		t.Fatalf("open the page: %v", err)
	}
	read := func() pageState {
		t.Helper()
		ctx, cancel := context.WithTimeout(bctx, 10*time.Second)
		defer cancel()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[pageState](readPage))
		if err != nil {
			t.Fatalf("read the page: %v", err)
		}
		return v
	}
	// waitFor reads the page until ok, for at most 30 s.
	waitFor := func(what string, ok func(pageState) bool) pageState {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			p := read()
			if ok(p) {
				return p
			}
			if time.Now().After(deadline) {
				t.Fatalf("the page never showed %s: %+v\nserver: %s", what, p, srv.logs())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	frameShot := func() []byte {
		t.Helper()
		ctx, cancel := context.WithTimeout(bctx, 10*time.Second)
		defer cancel()
		b, err := chromedp.Run(ctx, chromedp.Screenshot(chromedp.CSS("#frame")))
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		return b
	}

	// The frame appears, and changes. Two frames may look the same once
	// downscaled (a third of the synthetic frames carry no defect, and the
	// background does not move): the image must change within 20 newer
	// frames.
	p1 := waitFor("a frame", func(p pageState) bool { return p.FrameSeq != "" && p.ImgWidth > 0 && len(p.Consumers) == 1 })
	shot1 := frameShot()
	changed := false
	for seq, i := p1.FrameSeq, 0; i < 20 && !changed; i++ {
		seq = waitFor("a newer frame", func(p pageState) bool { return p.FrameSeq != seq }).FrameSeq
		changed = !bytes.Equal(shot1, frameShot())
	}
	if !changed {
		t.Fatal("the frame's image never changed over 20 newer frames")
	}
	if _, err := png.Decode(bytes.NewReader(shot1)); err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}

	// The counters lie between two ringctl show reports around the read.
	before := show(t, ring)
	since := time.Now().UnixMilli()
	p := waitFor("figures asked for after the first report", func(p pageState) bool { return p.Fetched > since })
	after := show(t, ring)
	num := func(s string) uint64 {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("page number %q: %v", s, err)
		}
		return n
	}
	within := func(what string, lo, v, hi uint64) {
		t.Helper()
		if v < lo || v > hi {
			t.Errorf("page %s %d not within [%d, %d] of ringctl show", what, v, lo, hi)
		}
	}
	within("published", before.Producer.Published, num(p.Published), after.Producer.Published)
	within("dropped", before.Drops.Total, num(p.Dropped), after.Drops.Total)
	if p.Epoch != before.Producer.Epoch.String() || p.Status != "live" {
		t.Fatalf("page epoch %q status %q, ring %v", p.Epoch, p.Status, before.Producer.Epoch)
	}
	if len(p.Consumers) != 1 || len(before.Consumers) != 1 || len(after.Consumers) != 1 || p.Consumers[0].Name != "analyzer" {
		t.Fatalf("page consumers %+v, ring %+v", p.Consumers, after.Consumers)
	}
	within("analyzer delivered", before.Consumers[0].Delivered, num(p.Consumers[0].Delivered), after.Consumers[0].Delivered)

	if path := os.Getenv("FRAMERING_SCREENSHOT"); path != "" {
		time.Sleep(2 * time.Second) // some sparkline
		b, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// A producer restart: the page follows the new run by itself.
	old := before.Producer.Epoch
	prod.stop()
	prod = startProducer()
	var rep ringstat.Report
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		var out bytes.Buffer
		if code := run(context.Background(), []string{"show", "-ring", ring, "-json", "-window", "0"}, &out, &out); code == 0 {
			if json.Unmarshal(out.Bytes(), &rep) == nil && rep.Producer.Epoch != old {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the new producer never came up")
		}
	}
	newEpoch := rep.Producer.Epoch.String()
	p2 := waitFor("the new producer's frames", func(p pageState) bool {
		return p.Epoch == newEpoch && p.FrameEp == newEpoch && p.FrameSeq != "" && p.Status == "live"
	})
	waitFor("the new producer's frames moving", func(p pageState) bool { return p.FrameEp == newEpoch && p.FrameSeq != p2.FrameSeq })
	_ = prod
}
