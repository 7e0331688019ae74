package bench_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImports keeps bench/ out of the hazard zone: shared memory comes from
// shm, process statistics from /proc. No unsafe, syscall, x/sys/unix or
// cgo; and no panic, log.Fatal or os.Exit outside a main package.
func TestImports(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	mains, err := filepath.Glob("cmd/*/*.go")
	if err != nil {
		t.Fatal(err)
	}
	forbidden := map[string]bool{"unsafe": true, "syscall": true, "C": true, "golang.org/x/sys/unix": true, "runtime/cgo": true}
	fset := token.NewFileSet()
	for _, name := range append(files, mains...) {
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			if path, _ := strconv.Unquote(imp.Path.Value); forbidden[path] {
				t.Errorf("%s imports %q", name, path)
			}
		}
		if f.Name.Name == "main" || strings.HasSuffix(name, "_test.go") {
			continue
		}
		ast.Inspect(f, func(n ast.Node) bool {
			c, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			switch fn := c.Fun.(type) {
			case *ast.Ident:
				if fn.Name == "panic" {
					t.Errorf("%s: panic at %v", name, fset.Position(c.Pos()))
				}
			case *ast.SelectorExpr:
				if x, ok := fn.X.(*ast.Ident); ok {
					if (x.Name == "os" && fn.Sel.Name == "Exit") || (x.Name == "log" && strings.HasPrefix(fn.Sel.Name, "Fatal")) {
						t.Errorf("%s: %s.%s at %v", name, x.Name, fn.Sel.Name, fset.Position(c.Pos()))
					}
				}
			}
			return true
		})
	}
}
