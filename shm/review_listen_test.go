package shm_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/framering/framering/shm"
)

// Listen replaces a stale *socket*; a regular file that happens to be at
// the path (a typo in a configured socket path) must be left alone.
func TestReviewListenKeepsNonSocketFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data.txt")
	if err := os.WriteFile(path, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := shm.Listen(path, 0o660)
	if err == nil {
		ln.Close()
	}
	b, rerr := os.ReadFile(path)
	if string(b) != "precious" {
		t.Fatalf("Listen on a regular file: err %v; the file is gone (%v)", err, rerr)
	}
}
