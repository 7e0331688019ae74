package native_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCSanitizers compiles the C SDK with its C test driver
// (testdata/sdk_test.c) under AddressSanitizer+UndefinedBehaviorSanitizer
// and under ThreadSanitizer, runs it, and requires exit 0, the driver's
// "ok" and no sanitizer report. It needs gcc (not cgo), so it runs in
// CGO_ENABLED=0 builds too.
//
// By hand:
//
//	gcc -O1 -g -Wall -Wextra -Werror -fsanitize=address,undefined \
//	    -fno-omit-frame-pointer -fno-sanitize-recover=all -pthread \
//	    native/testdata/sdk_test.c native/frsdk.c -o /tmp/sdk_test && /tmp/sdk_test
func TestCSanitizers(t *testing.T) {
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc not found: cannot build the C SDK with sanitizers")
	}
	sources := []string{filepath.Join("testdata", "sdk_test.c"), "frsdk.c"}
	for _, s := range []struct {
		name  string
		flags []string
		env   []string
	}{
		{"address,undefined", []string{"-fsanitize=address,undefined", "-fno-sanitize-recover=all"},
			[]string{"ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=0", "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1"}},
		{"thread", []string{"-fsanitize=thread"}, []string{"TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1"}},
	} {
		t.Run(s.name, func(t *testing.T) {
			bin := filepath.Join(t.TempDir(), "sdk_test")
			args := append([]string{"-O1", "-g", "-Wall", "-Wextra", "-Werror", "-fno-omit-frame-pointer", "-pthread"}, s.flags...)
			args = append(args, sources...)
			args = append(args, "-o", bin)
			if out, err := exec.Command(gcc, args...).CombinedOutput(); err != nil {
				if strings.Contains(string(out), "cannot find -l") {
					t.Skipf("gcc has no %s sanitizer runtime: %s", s.name, out)
				}
				t.Fatalf("gcc %s: %v\n%s", strings.Join(args, " "), err, out)
			}
			ctx, cancel := context.WithTimeout(context.Background(), hangGuard*3)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin)
			cmd.Env = append(cmd.Environ(), s.env...)
			out, err := cmd.CombinedOutput()
			text := string(out)
			if strings.Contains(text, "FATAL: ThreadSanitizer: unexpected memory mapping") {
				t.Skipf("ThreadSanitizer cannot run with this kernel's address-space layout:\n%s", text)
			}
			if err != nil || strings.TrimSpace(text) != "ok" || strings.Contains(text, "Sanitizer") || strings.Contains(text, "runtime error") {
				t.Fatalf("sdk_test under %s: %v\n%s", s.name, err, text)
			}
		})
	}
}
