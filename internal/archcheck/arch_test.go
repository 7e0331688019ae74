package archcheck

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/framering/framering/"

var hazards = map[string]bool{
	"unsafe": true, "C": true, "golang.org/x/sys/unix": true, "github.com/edsrzf/mmap-go": true,
}

// hazardOK reports whether package dir may import hazards.
func hazardOK(dir string) bool {
	top := strings.Split(dir, "/")[0]
	if top == "shm" || top == "native" {
		return true
	}
	// eBPF loaders live in a package of their own, named for it.
	base := filepath.Base(dir)
	return strings.Contains(base, "bpf") || strings.Contains(base, "exitwatch")
}

// forbidden lists, per package prefix, project packages it must not import.
var forbidden = map[string][]string{
	"consumers": {"producer", "native"},
	"native":    {"ringbuf", "producer", "consumers"},
	"ringbuf":   {"producer", "native", "consumers", "archive", "analysis", "bench", "cmd"},
	"shm":       {""}, // nothing of the project
	"frame":     {""},
	"analysis":  {"ringbuf", "producer", "native", "consumers", "shm"},
	"archive":   {"ringbuf", "producer", "native", "consumers"},
}

func root(t *testing.T) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above", dir)
		}
		dir = parent
	}
}

func TestLayering(t *testing.T) {
	top := root(t)
	fset := token.NewFileSet()
	checked := 0
	err := filepath.WalkDir(top, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); path != top && (strings.HasPrefix(n, ".") || n == "testdata" || n == "bench-results") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		rel, _ := filepath.Rel(top, path)
		dir := filepath.ToSlash(filepath.Dir(rel))
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			return nil
		}
		checked++
		isTest := strings.HasSuffix(path, "_test.go")
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if hazards[p] && !isTest && !hazardOK(dir) {
				t.Errorf("%s imports %q: unsafe, cgo, x/sys/unix and mmap belong in shm/ or native/ only", rel, p)
			}
			if !strings.HasPrefix(p, module) || isTest {
				continue
			}
			target := strings.TrimPrefix(p, module)
			for prefix, bans := range forbidden {
				if dir != prefix && !strings.HasPrefix(dir, prefix+"/") {
					continue
				}
				for _, ban := range bans {
					if ban == "" && !strings.HasPrefix(target, prefix) {
						t.Errorf("%s imports %s: %s/ imports nothing of the project", rel, p, prefix)
					}
					if ban != "" && (target == ban || strings.HasPrefix(target, ban+"/")) {
						t.Errorf("%s imports %s: %s/ must never import %s/", rel, p, prefix, ban)
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 20 {
		t.Fatalf("checked only %d files: is the walk rooted at the module?", checked)
	}
}

// The rule must catch what it claims to: a package outside the hazard zone
// importing unsafe is an offence; shm/ importing it is not.
func TestHazardRule(t *testing.T) {
	for dir, ok := range map[string]bool{"shm": true, "native": true, "ringbuf": false, "producer/exitwatch": true, "cmd/producer": false} {
		if hazardOK(dir) != ok {
			t.Errorf("hazardOK(%q) = %v", dir, !ok)
		}
	}
}
