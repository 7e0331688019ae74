package archiver

import (
	"errors"
	"testing"
	"time"

	"github.com/framering/framering/archive"
)

func TestParseSyncPolicy(t *testing.T) {
	for _, c := range []struct {
		in   string
		want archive.SyncPolicy
	}{
		{"always", archive.SyncPolicy{Records: 1}},
		{"never", archive.SyncPolicy{}},
		{"every=32", archive.SyncPolicy{Records: 32}},
		{"interval=250ms", archive.SyncPolicy{Interval: 250 * time.Millisecond}},
		{"bytes=64MiB", archive.SyncPolicy{Bytes: 64 << 20}},
		{"every=8,interval=1s,bytes=1G", archive.SyncPolicy{Records: 8, Interval: time.Second, Bytes: 1 << 30}},
		{DefaultSync, archive.SyncPolicy{Interval: 100 * time.Millisecond}},
	} {
		got, err := ParseSyncPolicy(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseSyncPolicy(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
		back, err := ParseSyncPolicy(FormatSyncPolicy(got))
		if err != nil || back != got {
			t.Errorf("%q does not round-trip: %q -> %+v, %v", c.in, FormatSyncPolicy(got), back, err)
		}
	}
	for _, bad := range []string{"", "sometimes", "every=0", "every=-1", "every=x", "interval=0", "interval=5", "bytes=", "every=1,,", "foo=1"} {
		if _, err := ParseSyncPolicy(bad); !errors.Is(err, ErrUsage) {
			t.Errorf("ParseSyncPolicy(%q): %v, want ErrUsage", bad, err)
		}
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"0": 0, "4096": 4096, "64K": 64 << 10, "64KiB": 64 << 10, "64kb": 64 << 10, "256MiB": 256 << 20,
		"1G": 1 << 30, "2 GiB": 2 << 30, "1T": 1 << 40, "100B": 100,
	} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "-1", "1.5G", "G", "1X", "99999999999T"} {
		if _, err := ParseSize(bad); !errors.Is(err, ErrUsage) {
			t.Errorf("ParseSize(%q): %v, want ErrUsage", bad, err)
		}
	}
}

func FuzzParseSyncPolicy(f *testing.F) {
	for _, s := range []string{"always", "never", "every=3,interval=1s,bytes=4K", "bytes=1G"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseSyncPolicy(s)
		if err != nil {
			if !errors.Is(err, ErrUsage) {
				t.Fatalf("%q: %v", s, err)
			}
			return
		}
		if p.Records < 0 || p.Bytes < 0 || p.Interval < 0 {
			t.Fatalf("%q: negative policy %+v", s, p)
		}
		if back, err := ParseSyncPolicy(FormatSyncPolicy(p)); err != nil || back != p {
			t.Fatalf("%q: %+v does not round-trip: %v", s, p, err)
		}
	})
}
