package native_test

import (
	"fmt"
	"testing"

	"github.com/framering/framering/native"
)

// TestFrameStatusString: a status prints by name in logs and test
// failures, not as a bare number.
func TestFrameStatusString(t *testing.T) {
	for s, want := range map[native.FrameStatus]string{
		native.FrameComplete: "complete", native.FrameIncomplete: "incomplete", native.FrameTimeout: "timeout",
		native.FrameSizeMismatch: "size_mismatch", native.FrameFailed: "failed", native.FrameAborted: "aborted",
		6: "FrameStatus(6)", -1: "FrameStatus(-1)",
	} {
		if got := fmt.Sprint(s); got != want {
			t.Errorf("FrameStatus %d prints %q, want %q", int32(s), got, want)
		}
	}
}
