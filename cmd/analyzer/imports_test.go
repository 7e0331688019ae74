package main

import (
	"os/exec"
	"strings"
	"testing"
)

// A consumer knows the ring and nothing of who fills it: neither this
// package nor anything it depends on imports producer/ or native/, and
// nothing of it outside shm/ reaches for unsafe or x/sys/unix.
func TestImportRules(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command in PATH")
	}
	out, err := exec.Command(gobin, "list", "-deps", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	const mod = "github.com/framering/framering/"
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, imports, _ := strings.Cut(line, " ")
		if pkg == mod+"producer" || strings.HasPrefix(pkg, mod+"producer/") || pkg == mod+"native" || strings.HasPrefix(pkg, mod+"native/") {
			t.Errorf("depends on %s", pkg)
		}
		if !strings.HasPrefix(pkg, mod) || strings.HasPrefix(pkg, mod+"shm") {
			continue
		}
		for _, imp := range strings.Fields(imports) {
			if imp == "unsafe" || imp == "golang.org/x/sys/unix" || imp == "C" {
				t.Errorf("%s imports %s", pkg, imp)
			}
		}
	}
}
