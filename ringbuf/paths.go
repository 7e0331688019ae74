package ringbuf

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// RuntimeDir is where ring sockets live: $FRAMERING_RUNTIME_DIR, else
// $XDG_RUNTIME_DIR/framering, else /run/framering for root, else
// $TMPDIR/framering-UID.
func RuntimeDir() string {
	if d := os.Getenv("FRAMERING_RUNTIME_DIR"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "framering")
	}
	if os.Geteuid() == 0 {
		return "/run/framering"
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("framering-%d", os.Geteuid()))
}

// SocketPath is the socket path of the ring called name.
func SocketPath(name string) (string, error) {
	if !nameRE.MatchString(name) {
		return "", fmt.Errorf("ring name %q: %w: want 1-64 of [A-Za-z0-9._-], not starting with . or -", name, ErrConfig)
	}
	return filepath.Join(RuntimeDir(), name+".sock"), nil
}

func resolvePath(name, path string) (string, error) {
	if path != "" {
		return path, nil
	}
	if name == "" {
		name = "default"
	}
	return SocketPath(name)
}

// ListRings returns the names of the rings whose sockets exist in
// RuntimeDir (a socket left by a crashed producer is listed until a new
// producer of that name replaces it; ringctl tells them apart by attaching).
func ListRings() ([]string, error) {
	ents, err := os.ReadDir(RuntimeDir())
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("list rings: %w", err)
	}
	var names []string
	for _, e := range ents {
		if n, ok := strings.CutSuffix(e.Name(), ".sock"); ok && e.Type()&os.ModeSocket != 0 {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names, nil
}
