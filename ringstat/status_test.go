package ringstat

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/framering/framering/ringbuf"
)

func TestBuild(t *testing.T) {
	prev := ringbuf.Snapshot{Epoch: 7, Published: 100, Consumers: []ringbuf.ConsumerInfo{
		{Entry: 0, Name: "a", AttachedUnix: 1, Delivered: 50},
		{Entry: 2, Name: "b", AttachedUnix: 5, Delivered: 90}, // will be replaced by another consumer
	}}
	cur := ringbuf.Snapshot{Epoch: 7, Published: 150, Slots: 4,
		SlotInfo: []ringbuf.SlotInfo{
			{Index: 0, Generation: 0},                                             // never used
			{Index: 1, Generation: 3, Seq: 149},                                   // odd: being written
			{Index: 2, Generation: 4, Seq: 150, Holders: 1<<0 | 1<<2},             // held by a and c
			{Index: 3, Generation: 2, Seq: 148, Holders: 1 << 9, Published: true}, // held by a departed entry
		},
		Consumers: []ringbuf.ConsumerInfo{
			{Entry: 0, Name: "a", Mode: "lossless", AttachedUnix: 1, Delivered: 75},
			{Entry: 2, Name: "c", Mode: "lossy", AttachedUnix: 9, Delivered: 3},
		}}
	for i := range cur.SlotInfo {
		cur.SlotInfo[i].Published = cur.SlotInfo[i].Generation%2 == 0
	}
	r := Build("r", "/x/r.sock", cur, &prev, 500*time.Millisecond)
	if r.Producer.Rate != 100 || r.WindowNs != int64(500*time.Millisecond) {
		t.Fatalf("producer rate %v", r.Producer.Rate)
	}
	if r.Consumers[0].Rate != 50 || r.Consumers[1].Rate != 0 {
		t.Fatalf("consumer rates %v %v (a new consumer in a reused entry has no rate yet)", r.Consumers[0].Rate, r.Consumers[1].Rate)
	}
	if (r.SlotCounts != SlotCounts{Free: 1, Writing: 1, Held: 2}) {
		t.Fatalf("slot counts %+v", r.SlotCounts)
	}
	if got := strings.Join(r.SlotList[2].HeldBy, ","); got != "a,c" {
		t.Fatalf("slot 2 held by %q", got)
	}
	if got := strings.Join(r.SlotList[3].HeldBy, ","); got != "entry 9" {
		t.Fatalf("slot 3 held by %q", got)
	}
	if len(r.Consumers[0].HeldSlots) != 1 || r.Consumers[0].HeldSlots[0] != 2 {
		t.Fatalf("a holds %v", r.Consumers[0].HeldSlots)
	}
	// Another producer run: no rates.
	prev.Epoch = 8
	if r := Build("r", "", cur, &prev, time.Second); r.Producer.Rate != 0 || r.WindowNs != 0 || r.Consumers[0].Rate != 0 {
		t.Fatalf("rates across epochs: %+v", r)
	}
	var b bytes.Buffer
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"entry 9", "a, c", "lossless", "50.0/s", "rate 100.0/s"} {
		if !strings.Contains(b.String(), s) {
			t.Fatalf("text lacks %q:\n%s", s, b.String())
		}
	}
}

func TestEpochText(t *testing.T) {
	e := Epoch(0xfedcba9876543210)
	b, _ := e.MarshalText()
	var back Epoch
	if string(b) != "fedcba9876543210" || back.UnmarshalText(b) != nil || back != e {
		t.Fatalf("%s -> %x", b, uint64(back))
	}
	if back.UnmarshalText([]byte("zz")) == nil {
		t.Fatal("bad epoch accepted")
	}
}
