package producer_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImports keeps the package out of the hazard zone and inside its
// layer: no unsafe, cgo, syscall or x/sys/unix (those live in shm/ and
// native/), only ringbuf, native, frame and its own exitwatch of the project; and no panic,
// log.Fatal or os.Exit in library code.
func TestImports(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	forbidden := map[string]bool{"unsafe": true, "C": true, "syscall": true, "golang.org/x/sys/unix": true, "log": true}
	project := map[string]bool{
		"github.com/framering/framering/ringbuf": true, "github.com/framering/framering/native": true,
		"github.com/framering/framering/frame": true, "github.com/framering/framering/producer/exitwatch": true,
	}
	fset := token.NewFileSet()
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if forbidden[path] {
				t.Errorf("%s imports %q", name, path)
			}
			if strings.HasPrefix(path, "github.com/framering/") && !project[path] {
				t.Errorf("%s imports %q: producer builds on ringbuf, native and frame only", name, path)
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			switch fn := call.Fun.(type) {
			case *ast.Ident:
				if fn.Name == "panic" {
					t.Errorf("%s: panic in library code at %v", name, fset.Position(call.Pos()))
				}
			case *ast.SelectorExpr:
				if x, ok := fn.X.(*ast.Ident); ok && (x.Name == "os" && fn.Sel.Name == "Exit" || x.Name == "log") {
					t.Errorf("%s: %s.%s in library code at %v", name, x.Name, fn.Sel.Name, fset.Position(call.Pos()))
				}
			}
			return true
		})
	}
	if checked < 5 {
		t.Fatalf("checked only %d files", checked)
	}
}
