package archcheck

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/framering/framering"

// hazards may be imported only inside the hazard zone.
var hazards = map[string]bool{
	"unsafe": true, "C": true, "golang.org/x/sys/unix": true, "github.com/edsrzf/mmap-go": true,
}

// alsoBanned are kept out of the listed layers though the standard library
// has them: raw syscalls and cgo belong below the ring.
var alsoBanned = map[string][]string{
	"syscall":     {"producer", "consumers", "analysis", "bench"},
	"runtime/cgo": {"producer", "consumers", "analysis", "bench", "ringbuf", "archive"},
}

// hazardOK reports whether the package at dir (module-relative) may import hazards.
func hazardOK(dir string) bool {
	top := strings.Split(dir, "/")[0]
	if top == "shm" || top == "native" {
		return true
	}
	if dir == "clock" {
		return true // unsafe only for its go:linkname of runtime.nanotime
	}
	return ebpfLoaders[dir]
}

// ebpfLoaders are the packages, by path, that load eBPF programs and so
// talk to the kernel through cilium/ebpf and x/sys/unix: exempt from the
// hazard rule by name, one by one, never by a pattern.
var ebpfLoaders = map[string]bool{
	"producer/exitwatch":      true,
	"bench/internal/schedlat": true,
}

// layers: a package under the key must not depend, even indirectly, on a
// project package under any of the values. "" means: nothing of the project
// but itself and the allowed list in onlyDeps.
var layers = map[string][]string{
	"consumers":    {"producer", "native"},
	"cmd/analyzer": {"producer", "native"},
	"cmd/archiver": {"producer", "native"},
	"cmd/ringctl":  {"producer", "native"},
	"ringstat":     {"producer", "native", "consumers"},
	"native":       {"ringbuf", "producer", "consumers"},
	"archive":      {"ringbuf", "producer", "native", "consumers"},
}

// onlyDeps: a package under the key may depend on these project packages only.
var onlyDeps = map[string][]string{
	"shm":      {"clock"},
	"frame":    {},
	"clock":    {},
	"loss":     {},
	"ringbuf":  {"shm", "frame", "clock", "loss"},
	"ringstat": {"ringbuf", "shm", "frame", "clock", "loss"},
	"analysis": {"frame", "loss"},
}

func under(pkg, prefix string) bool { return pkg == prefix || strings.HasPrefix(pkg, prefix+"/") }

type listed struct {
	ImportPath string
	Name       string
	Deps       []string
}

func goList(t *testing.T) []listed {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	cmd := exec.Command(gobin, "list", "-json=ImportPath,Name,Deps", module+"/...")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []listed
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p listed
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 15 {
		t.Fatalf("go list found %d packages: is the test run inside the module?", len(pkgs))
	}
	return pkgs
}

// commandHomes: logic private to one command lives under cmd/NAME/internal/;
// the module's top-level internal/ holds only what serves the whole module
// (test machinery, these checks, the pprof/metrics endpoint, and the one
// command-line convention — exit codes, help, logger — that every command
// shares: internal/cli), never a command's logic.
var topInternal = map[string]bool{"internal/archcheck": true, "internal/testmain": true, "internal/diag": true, "internal/cli": true}

// TestOneHomeForCommandLogic: every package under the top-level internal/
// is on the short list above; command logic moved there by habit fails.
func TestOneHomeForCommandLogic(t *testing.T) {
	for _, p := range goList(t) {
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		if under(rel, "internal") && !topInternal[rel] {
			t.Errorf("%s: command logic belongs under cmd/NAME/internal/, libraries at the top level", rel)
		}
	}
}

// TestLayering checks every package's transitive dependencies.
func TestLayering(t *testing.T) {
	for _, p := range goList(t) {
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		for _, dep := range p.Deps {
			if !strings.HasPrefix(dep, module+"/") {
				continue
			}
			d := strings.TrimPrefix(dep, module+"/")
			for prefix, bans := range layers {
				if !under(rel, prefix) {
					continue
				}
				for _, ban := range bans {
					if under(d, ban) {
						t.Errorf("%s depends on %s: %s/ must never reach %s/", rel, d, prefix, ban)
					}
				}
			}
			for prefix, allowed := range onlyDeps {
				if !under(rel, prefix) || under(d, prefix) {
					continue
				}
				ok := false
				for _, a := range allowed {
					ok = ok || under(d, a)
				}
				if !ok {
					t.Errorf("%s depends on %s: %s/ may depend only on %v of the project", rel, d, prefix, allowed)
				}
			}
		}
	}
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

// TestHazardZoneAndLibraryExits parses every non-test Go file: hazardous
// imports stay in the hazard zone, and library packages do not panic,
// log.Fatal or os.Exit.
func TestHazardZoneAndLibraryExits(t *testing.T) {
	top := root(t)
	fset := token.NewFileSet()
	checked := 0
	err := filepath.WalkDir(top, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); path != top && (strings.HasPrefix(n, ".") || n == "testdata" || n == "bench-results" || n == "bin") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		rel, _ := filepath.Rel(top, path)
		dir := filepath.ToSlash(filepath.Dir(rel))
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			return nil
		}
		checked++
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if hazards[p] && !hazardOK(dir) {
				t.Errorf("%s imports %q: unsafe, cgo, x/sys/unix and mmap belong in shm/ or native/ only", rel, p)
			}
			for _, layer := range alsoBanned[p] {
				if under(dir, layer) && !hazardOK(dir) {
					t.Errorf("%s imports %q, which stays below the ring", rel, p)
				}
			}
		}
		if f.Name.Name == "main" {
			return nil
		}
		ast.Inspect(f, func(n ast.Node) bool {
			c, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			switch fn := c.Fun.(type) {
			case *ast.Ident:
				if fn.Name == "panic" && fn.Obj == nil {
					t.Errorf("%s: panic in a library package at %v", rel, fset.Position(c.Pos()))
				}
			case *ast.SelectorExpr:
				if x, ok := fn.X.(*ast.Ident); ok {
					name := x.Name + "." + fn.Sel.Name
					if name == "os.Exit" || strings.HasPrefix(name, "log.Fatal") || strings.HasPrefix(name, "log.Panic") {
						t.Errorf("%s: %s in a library package at %v", rel, name, fset.Position(c.Pos()))
					}
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 30 {
		t.Fatalf("checked only %d files: is the walk rooted at the module?", checked)
	}
}

// The rules must bite: a package outside the hazard zone importing unsafe
// is an offence; shm/ importing it is not.
func TestRulesBite(t *testing.T) {
	for dir, ok := range map[string]bool{"shm": true, "native": true, "ringbuf": false, "producer/exitwatch": true,
		"bench/internal/schedlat": true, "cmd/producer": false, "consumers": false,
		"producer/ebpfish": false, "bench/bpf": false} {
		if hazardOK(dir) != ok {
			t.Errorf("hazardOK(%q) = %v", dir, !ok)
		}
	}
	if !under("consumers/x", "consumers") || under("consumersx", "consumers") {
		t.Error("under() is wrong")
	}
}

// TestOffsetsOnlyInLayout: no file of ringbuf/ but layout*.go turns an
// offset into a mapped word. The offset constants (data header off*,
// descriptor d*, control header c*, table entry e*) and the geometry's
// region helpers may be named only there; everything else asks a typed
// accessor by meaning (layout_access.go), where each atomic's ordering is
// stated once.
func TestOffsetsOnlyInLayout(t *testing.T) {
	dir := filepath.Join(root(t), "ringbuf")
	fset := token.NewFileSet()
	layout, err := parser.ParseFile(fset, filepath.Join(dir, "layout.go"), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	offsets := map[string]bool{}
	for _, d := range layout.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, spec := range g.Specs {
			for _, n := range spec.(*ast.ValueSpec).Names {
				name := n.Name
				if len(name) > 1 && (strings.HasPrefix(name, "off") || strings.ContainsAny(name[:1], "dce")) &&
					strings.ToUpper(name[1:2]) == name[1:2] || strings.HasPrefix(name, "off") {
					offsets[name] = true
				}
			}
		}
	}
	if !offsets["offPublished"] || !offsets["dGen"] || !offsets["eCursor"] || !offsets["cWaiters"] {
		t.Fatalf("found no offset constants in layout.go: %v", offsets)
	}
	regions := map[string]bool{"desc": true, "hold": true, "entry": true, "index": true, "payload": true}
	files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	checked := 0
	for _, path := range files {
		base := filepath.Base(path)
		if strings.HasPrefix(base, "layout") || strings.HasSuffix(base, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		ast.Inspect(f, func(n ast.Node) bool {
			switch x := n.(type) {
			case *ast.Ident:
				if offsets[x.Name] {
					t.Errorf("%s: offset %s used outside ringbuf/layout*.go", fset.Position(x.Pos()), x.Name)
				}
			case *ast.SelectorExpr:
				if sel, ok := x.X.(*ast.SelectorExpr); ok && sel.Sel.Name == "geo" && regions[x.Sel.Name] {
					t.Errorf("%s: geometry region offset .geo.%s outside ringbuf/layout*.go", fset.Position(x.Pos()), x.Sel.Name)
				}
			}
			return true
		})
	}
	if checked < 5 {
		t.Fatalf("checked only %d files of ringbuf/", checked)
	}
}
