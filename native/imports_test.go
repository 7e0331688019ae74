package native_test

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImports keeps the package's place in the architecture: of the
// project it may import only frame/ (never ringbuf/ or anything above it),
// and the only third-party module it may use is golang.org/x/sys.
func TestImports(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("glob: %v", err)
	}
	const module = "github.com/framering/framering/"
	fset := token.NewFileSet()
	for _, name := range files {
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			switch {
			case path == module+"frame", path == module+"native":
			case strings.HasPrefix(path, module):
				t.Errorf("%s imports %s: native/ may import only frame/ of the project", name, path)
			case strings.HasPrefix(path, "golang.org/x/sys/"):
			case strings.Contains(strings.SplitN(path, "/", 2)[0], "."):
				t.Errorf("%s imports %s: no new dependencies", name, path)
			}
		}
	}
}
