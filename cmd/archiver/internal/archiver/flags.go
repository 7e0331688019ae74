package archiver

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/framering/framering/archive"
)

// DefaultSync is the default fsync policy: a batch every 100 ms, so that an
// fsync covers many frames at any frame rate and a crash of the machine loses
// at most the last 100 ms.
const DefaultSync = "interval=100ms"

// ParseSyncPolicy parses an fsync policy: "always" (every record), "never"
// (only at rotation and exit), or a comma-separated list of triggers,
// any of which fires: "every=N" records, "interval=D" (a Go duration),
// "bytes=SIZE" (see ParseSize).
func ParseSyncPolicy(s string) (archive.SyncPolicy, error) {
	var p archive.SyncPolicy
	switch s {
	case "always":
		return archive.SyncPolicy{Records: 1}, nil
	case "never":
		return p, nil
	case "":
		return p, fmt.Errorf("parse fsync policy: %w: empty", ErrUsage)
	}
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return p, fmt.Errorf("parse fsync policy %q: %w: %q is not always, never, every=N, interval=D or bytes=SIZE", s, ErrUsage, part)
		}
		switch k {
		case "every":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return p, fmt.Errorf("parse fsync policy %q: %w: every=%s", s, ErrUsage, v)
			}
			p.Records = n
		case "interval":
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return p, fmt.Errorf("parse fsync policy %q: %w: interval=%s", s, ErrUsage, v)
			}
			p.Interval = d
		case "bytes":
			n, err := ParseSize(v)
			if err != nil || n < 1 {
				return p, fmt.Errorf("parse fsync policy %q: %w: bytes=%s", s, ErrUsage, v)
			}
			p.Bytes = n
		default:
			return p, fmt.Errorf("parse fsync policy %q: %w: unknown trigger %q", s, ErrUsage, k)
		}
	}
	return p, nil
}

// FormatSyncPolicy prints a policy the way ParseSyncPolicy reads it.
func FormatSyncPolicy(p archive.SyncPolicy) string {
	if p.Records == 1 {
		return "always"
	}
	var parts []string
	if p.Records > 0 {
		parts = append(parts, "every="+strconv.Itoa(p.Records))
	}
	if p.Interval > 0 {
		parts = append(parts, "interval="+p.Interval.String())
	}
	if p.Bytes > 0 {
		parts = append(parts, "bytes="+strconv.FormatInt(p.Bytes, 10))
	}
	if len(parts) == 0 {
		return "never"
	}
	return strings.Join(parts, ",")
}

// ParseSize parses a byte count: a decimal number with an optional suffix
// K, M, G, T (powers of 1024; KiB, MiB, GiB, TiB and KB, MB, GB, TB are read
// the same way) or B.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	upper := strings.ToUpper(t)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"TIB", 1 << 40}, {"GIB", 1 << 30}, {"MIB", 1 << 20}, {"KIB", 1 << 10},
		{"TB", 1 << 40}, {"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10},
		{"T", 1 << 40}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(upper, u.suffix) {
			t, mult = strings.TrimSpace(t[:len(t)-len(u.suffix)]), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || (n > 0 && mult > (1<<62)/n) {
		return 0, fmt.Errorf("parse size %q: %w", s, ErrUsage)
	}
	return n * mult, nil
}

// sizeFlag is a flag.Value for byte counts.
type sizeFlag struct{ n *int64 }

func (f sizeFlag) String() string {
	if f.n == nil {
		return "0"
	}
	return strconv.FormatInt(*f.n, 10)
}

func (f sizeFlag) Set(s string) error {
	n, err := ParseSize(s)
	if err != nil {
		return err
	}
	*f.n = n
	return nil
}

// syncFlag is a flag.Value for fsync policies.
type syncFlag struct{ p *archive.SyncPolicy }

func (f syncFlag) String() string {
	if f.p == nil {
		return DefaultSync
	}
	return FormatSyncPolicy(*f.p)
}

func (f syncFlag) Set(s string) error {
	p, err := ParseSyncPolicy(s)
	if err != nil {
		return err
	}
	*f.p = p
	return nil
}

// windowFlag is a flag.Value for a Window: "N" frames or a duration.
type windowFlag struct{ w *Window }

func (f windowFlag) String() string {
	if f.w == nil {
		return ""
	}
	return f.w.String()
}

func (f windowFlag) Set(s string) error {
	w, err := ParseWindow(s)
	if err != nil {
		return err
	}
	*f.w = w
	return nil
}
