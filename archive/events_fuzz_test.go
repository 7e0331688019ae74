package archive_test

import (
	"testing"

	"github.com/framering/framering/archive"
)

// FuzzParseEvent: an events.jsonl line is refused or is a consistent event.
func FuzzParseEvent(f *testing.F) {
	f.Add([]byte(`{"id":1,"epoch":"00000000000000e1","first_seq":3,"last_seq":5,"frames":3,"first_record":0,"last_record":2}`))
	f.Add([]byte(`{"id":1,"first_seq":5,"last_seq":3,"frames":3}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := archive.ParseEvent(b)
		if err != nil {
			return
		}
		if ev.ID == 0 || ev.LastSeq < ev.FirstSeq || ev.Frames == 0 || ev.Frames > ev.LastSeq-ev.FirstSeq+1 {
			t.Fatalf("accepted %q as %+v", b, ev)
		}
	})
}
