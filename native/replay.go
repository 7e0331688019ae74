package native

// Replay: the synthetic source delivering recorded frames instead of the
// pattern (producer -source archive). The recording is read through
// Replayer, which the producer implements on an archive; this package
// only paces the frames, copies each once into a queued buffer, and
// counts the recording's own losses as loss.ReplayGap.

import "github.com/framering/framering/frame"

// KindArchive is a Synthetic source replaying Config.Replay.
const KindArchive = "archive"

// Replayer reads recorded frames in order.
type Replayer interface {
	// Next copies the next recorded frame into dst and describes it. A
	// frame larger than dst is not copied: Next counts it in the next
	// frame's LostBefore and goes on. At the end it returns io.EOF.
	Next(dst []byte) (ReplayFrame, error)
}

// ReplayFrame describes a recorded frame Next copied.
type ReplayFrame struct {
	Geometry frame.Geometry
	// Timestamp is the original capture time: the replay keeps the
	// original spacing, divided by Config.Speed.
	Timestamp int64
	// OriginEpoch and OriginSeq are the frame's identity in the ring it was
	// recorded from (FrameInfo.Origin*).
	OriginEpoch, OriginSeq uint64
	// LostBefore counts the frames the recording lost just before this one
	// (its gap records, frames too large): replay gaps, never closed up.
	LostBefore uint64
	// Flags are the recorded frame's flags, if known (FlagPattern, ...).
	Flags uint32
}
