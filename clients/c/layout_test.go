package libframering_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// specTables parses the field tables of docs/LAYOUT.md sections 3.1, 3.2,
// 4.1 and 4.3: each row's offset by field name, by section.
func specTables(t *testing.T) map[string]map[string]uint64 {
	t.Helper()
	doc, err := os.ReadFile("../../docs/LAYOUT.md")
	if err != nil {
		t.Fatal(err)
	}
	sections := map[string]string{"### 3.1 ": "D_", "### 3.2 ": "DS_", "### 4.1 ": "C_", "### 4.3 ": "E_"}
	row := regexp.MustCompile("^\\| (0x[0-9A-Fa-f]+) \\| ([0-9]+) \\| [^|]*\\| `([a-z_]+)` \\|")
	out := map[string]map[string]uint64{}
	cur := ""
	for _, line := range strings.Split(string(doc), "\n") {
		if strings.HasPrefix(line, "#") {
			cur = ""
			for prefix, name := range sections {
				if strings.HasPrefix(line, prefix) {
					cur = name
				}
			}
			continue
		}
		if m := row.FindStringSubmatch(line); m != nil && cur != "" {
			off, _ := strconv.ParseUint(m[1], 0, 64)
			if out[cur] == nil {
				out[cur] = map[string]uint64{}
			}
			out[cur][m[3]] = off
		}
	}
	return out
}

// Every offset libframering defines (src/internal.h) is the one
// docs/LAYOUT.md specifies for the field of that name, and every field the
// library needs is defined: a change to either side fails here.
func TestLayoutMatchesSpec(t *testing.T) {
	src, err := os.ReadFile("src/internal.h")
	if err != nil {
		t.Fatal(err)
	}
	def := regexp.MustCompile(`(?m)^#define ((D|DS|C|E)_[A-Z_]+) (0x[0-9A-Fa-f]+)\b`)
	defined := map[string]uint64{}
	for _, m := range def.FindAllStringSubmatch(string(src), -1) {
		v, _ := strconv.ParseUint(m[3], 0, 64)
		defined[m[1]] = v
	}
	spec := specTables(t)
	checked := 0
	for prefix, fields := range spec {
		for name, off := range fields {
			macro := prefix + strings.ToUpper(name)
			if v, ok := defined[macro]; ok {
				checked++
				if v != off {
					t.Errorf("%s = %#x in src/internal.h, docs/LAYOUT.md says %s is at %#x", macro, v, name, off)
				}
			}
		}
	}
	for macro := range defined {
		prefix, name, _ := strings.Cut(macro, "_")
		if _, ok := spec[prefix+"_"][strings.ToLower(name)]; !ok && !slices.Contains(notFields, macro) {
			t.Errorf("%s names no field of docs/LAYOUT.md", macro)
		}
	}
	// What the library reads and writes must all be there.
	for _, m := range []string{"D_MAGIC", "D_VERSION", "D_SLOT_COUNT", "D_HOLD_QUOTA", "D_HEARTBEAT_PERIOD_NS", "D_PUBLISHED",
		"D_STATE", "D_SOURCE_STATE", "D_WAKE", "D_HEARTBEAT_NS", "D_DROPS", "DS_GEN", "DS_SEQ", "DS_LENGTH", "DS_DROPS_BEFORE",
		"C_WAITERS", "C_EPOCH", "E_STATE", "E_CURSOR", "E_HELD", "E_REVOKED_SEEN"} {
		if _, ok := defined[m]; !ok {
			t.Errorf("src/internal.h does not define %s", m)
		}
	}
	if checked < 60 {
		t.Fatalf("only %d offsets compared: did the spec's tables or the header's names change?", checked)
	}
}

// notFields are internal.h macros with a layout prefix that are not
// offsets of a named field.
var notFields = []string{"D_DROP_CAUSES", "DS_DROPS_WORDS"}

// The shared library exports exactly the functions the header declares
// with FR_API (the rest is hidden), and each is defined.
func TestExportedSymbolsMatchHeader(t *testing.T) {
	root, err := buildRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "release")
	if out, err := exec.Command("make", "-s", "BUILD="+dir, "lib").CombinedOutput(); err != nil {
		t.Fatalf("make lib: %v\n%s", err, out)
	}
	h, err := os.ReadFile("include/framering.h")
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, m := range regexp.MustCompile(`(?m)^FR_API [^(]*?\b(fr_[a-z0-9_]+)\(`).FindAllStringSubmatch(string(h), -1) {
		want = append(want, m[1])
	}
	out, err := exec.Command("nm", "-D", "--defined-only", filepath.Join(dir, "libframering.so")).Output()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) == 3 && strings.Contains("TWDBR", f[1]) {
			got = append(got, f[2])
		}
	}
	slices.Sort(want)
	slices.Sort(got)
	if len(want) < 20 || !slices.Equal(want, got) {
		t.Fatalf("the header declares %v\nthe library exports %v", want, got)
	}
}
