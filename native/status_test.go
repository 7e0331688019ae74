package native_test

import (
	"fmt"
	"testing"

	"github.com/framering/framering/loss"
	"github.com/framering/framering/native"
)

// TestFrameStatusString: a status prints by name in logs and test
// failures, not as a bare number.
func TestFrameStatusString(t *testing.T) {
	for s, want := range map[native.FrameStatus]string{
		native.FrameComplete: "complete", native.FrameIncomplete: "incomplete", native.FrameTimeout: "timeout",
		native.FrameSizeMismatch: "size_mismatch", native.FrameFailed: "failed", native.FrameAborted: "aborted",
		native.FrameUnderrun: "underrun", 7: "FrameStatus(7)", -1: "FrameStatus(-1)",
	} {
		if got := fmt.Sprint(s); got != want {
			t.Errorf("FrameStatus %d prints %q, want %q", int32(s), got, want)
		}
	}
}

// TestFrameStatusCause: the producer counts a frame that is not complete
// under its status's cause, each status under its own.
func TestFrameStatusCause(t *testing.T) {
	for s, want := range map[native.FrameStatus]loss.Cause{
		native.FrameIncomplete: loss.Incomplete, native.FrameTimeout: loss.Timeout,
		native.FrameSizeMismatch: loss.SizeMismatch, native.FrameFailed: loss.SourceError,
		native.FrameAborted: loss.Discarded, native.FrameUnderrun: loss.Underrun, 7: loss.SourceError,
	} {
		if got := s.Cause(); got != want {
			t.Errorf("FrameStatus %v has cause %v, want %v", s, got, want)
		}
	}
}
