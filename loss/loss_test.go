package loss_test

import (
	"encoding/json"
	"errors"
	"os"
	"regexp"
	"strconv"
	"testing"

	"github.com/framering/framering/loss"
)

func TestNamesRoundTrip(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range loss.Known() {
		name := c.String()
		if seen[name] {
			t.Errorf("two causes named %q", name)
		}
		seen[name] = true
		if !regexp.MustCompile(`^[a-z][a-z_]*$`).MatchString(name) {
			t.Errorf("cause %d: name %q is not snake_case", c, name)
		}
		back, err := loss.Parse(name)
		if err != nil || back != c {
			t.Errorf("Parse(%q) = %v, %v; want %d", name, back, err, c)
		}
		if c.Description() == "" {
			t.Errorf("cause %s has no description", name)
		}
	}
	if int(loss.Known()[len(loss.Known())-1]) >= loss.Max {
		t.Fatalf("more causes than the ring's table has counters")
	}
}

func TestUnknownCodesKeepTheirNumber(t *testing.T) {
	c := loss.Cause(61)
	if c.Defined() || c.String() != "cause_61" {
		t.Fatalf("code 61: defined %v, name %q", c.Defined(), c)
	}
	back, err := loss.Parse("cause_61")
	if err != nil || back != c {
		t.Fatalf("Parse(cause_61) = %v, %v", back, err)
	}
	if _, err := loss.Parse("no_such_cause"); !errors.Is(err, loss.ErrUnknownCause) {
		t.Fatalf("Parse of a bad name: %v", err)
	}
}

// The archive format's first eleven cause values predate this package;
// their codes must not move.
func TestArchiveCodesAreStable(t *testing.T) {
	want := map[loss.Cause]string{0: "unknown", 1: "producer_drop", 2: "evicted", 3: "disk_full", 4: "write_error",
		5: "rejected", 6: "consumer_down", 7: "underrun", 8: "source_error", 9: "producer_restart", 10: "missed"}
	for c, name := range want {
		if c.String() != name {
			t.Errorf("code %d is %q, want %q", c, c, name)
		}
	}
}

func TestJSONUsesNames(t *testing.T) {
	b, err := json.Marshal(map[string]loss.Cause{"cause": loss.Blocked})
	if err != nil || string(b) != `{"cause":"blocked"}` {
		t.Fatalf("json: %s, %v", b, err)
	}
	var v struct{ Cause loss.Cause }
	if err := json.Unmarshal([]byte(`{"Cause":"incomplete"}`), &v); err != nil || v.Cause != loss.Incomplete {
		t.Fatalf("unmarshal: %v, %v", v.Cause, err)
	}
}

func TestCounts(t *testing.T) {
	var a, b loss.Counts
	a[loss.Underrun], a[loss.Blocked] = 5, 7
	b[loss.Underrun] = 2
	d := a.Sub(b)
	if d[loss.Underrun] != 3 || d[loss.Blocked] != 7 || d.Total() != 10 {
		t.Fatalf("Sub: %v", d.Map())
	}
	if nz := d.Nonzero(); len(nz) != 2 || nz[0] != loss.Underrun || nz[1] != loss.Blocked {
		t.Fatalf("Nonzero: %v", nz)
	}
}

// Every cause is listed, with its code and name, in the two specifications
// that carry cause codes: the ring layout and the archive format.
func TestSpecsListEveryCause(t *testing.T) {
	for _, doc := range []string{"../docs/LAYOUT.md", "../archive/FORMAT.md"} {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range loss.Known() {
			row := regexp.MustCompile(`(?m)^\|\s*` + strconv.Itoa(int(c)) + `\s*\|\s*` + "`" + c.String() + "`" + `\s*\|`)
			if !row.Match(b) {
				t.Errorf("%s: no table row | %d | `%s` |", doc, c, c)
			}
		}
	}
}

func TestCountsJSONRoundTrip(t *testing.T) {
	var c loss.Counts
	c[loss.Blocked], c[loss.Incomplete], c[61] = 3, 4, 5
	b, err := json.Marshal(c)
	if err != nil || string(b) != `{"blocked":3,"cause_61":5,"incomplete":4}` {
		t.Fatalf("marshal: %s, %v", b, err)
	}
	var back loss.Counts
	if err := json.Unmarshal(b, &back); err != nil || back != c {
		t.Fatalf("round trip: %v, %v", back.Map(), err)
	}
	if err := json.Unmarshal([]byte(`{"no_such":1}`), &back); !errors.Is(err, loss.ErrUnknownCause) {
		t.Fatalf("unknown name: %v", err)
	}
}
