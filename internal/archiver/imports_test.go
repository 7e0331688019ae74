package archiver

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImports keeps the archiver a consumer like any other: it knows the
// ring (through consumers and ringbuf) and nothing of who fills it, and it
// stays out of the hazard zone. Test files may do more (they run a producer).
func TestImports(t *testing.T) {
	forbidden := []string{
		"github.com/framering/framering/producer",
		"github.com/framering/framering/native",
		"github.com/framering/framering/shm",
		"unsafe", "C", "golang.org/x/sys/unix",
	}
	var files []string
	for _, dir := range []string{".", "../../cmd/archiver"} {
		m, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	checked := 0
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			for _, bad := range forbidden {
				if p == bad || strings.HasPrefix(p, bad+"/") {
					t.Errorf("%s imports %s", path, p)
				}
			}
		}
	}
	if checked < 5 {
		t.Fatalf("checked only %d files", checked)
	}
}
