package archive_test

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImports keeps the hazard zone out of this package: unsafe, x/sys/unix
// and mmap packages belong to shm/ and native/ (ARCHITECTURE.md). Tests may
// use x/sys/unix; they use syscall.Mount instead.
func TestImports(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	forbidden := []string{"unsafe", "golang.org/x/sys/unix", "github.com/edsrzf/mmap-go", "C",
		"github.com/framering/framering/native", "github.com/framering/framering/producer"}
	fset := token.NewFileSet()
	for _, name := range files {
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			for _, bad := range forbidden {
				if path == bad || strings.HasPrefix(path, bad+"/") {
					if strings.HasSuffix(name, "_test.go") && path == "golang.org/x/sys/unix" {
						continue
					}
					t.Errorf("%s imports %s", name, path)
				}
			}
		}
	}
}
