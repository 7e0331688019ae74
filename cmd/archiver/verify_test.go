package main_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// TestVerifyMissing: cutting the last segment in the middle is damage that
// verify reports with the range and the frames' ring identity, and exit
// status 3 (a check that ran and found a problem); its JSON report uses
// snake_case keys throughout.
func TestVerifyMissing(t *testing.T) {
	dir := archiveSome(t, 30)
	seg := lastSegment(t, dir)
	st, err := os.Stat(seg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(seg, st.Size()/2); err != nil {
		t.Fatal(err)
	}
	text, code := runCmd(t, "verify", "-dir", dir)
	if code != 3 || !strings.Contains(text, "DAMAGED") || !regexp.MustCompile(`missing +record seq \d+\.\.29 .*ring seq \d+\.\.30`).MatchString(text) {
		t.Fatalf("verify of a cut archive: exit %d:\n%s", code, text)
	}
	if strings.Contains(text, "torn tail") {
		t.Fatalf("a cut through fsynced records reported as a torn tail:\n%s", text)
	}
	out, err := exec.Command(archiverBin, "verify", "-json", "-dir", dir).Output()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 {
		t.Fatalf("verify -json: %v", err)
	}
	var v any
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("verify -json: %v\n%s", err, out)
	}
	snake := regexp.MustCompile(`^[a-z0-9]+(_[a-z0-9]+)*$`)
	var walk func(any)
	walk = func(x any) {
		switch x := x.(type) {
		case map[string]any:
			for k, e := range x {
				if !snake.MatchString(k) {
					t.Errorf("JSON key %q is not snake_case", k)
				}
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(v)
	if m := v.(map[string]any)["missing"]; m == nil {
		t.Fatalf("no missing ranges in %s", out)
	}
}
