//go:build !amd64 && !arm64

package shm

// The ring's seqlock readers need an explicit load fence on weakly ordered
// architectures; framering provides one for amd64 and arm64 only. Building
// elsewhere fails here rather than producing a ring with torn reads.
var _ = framering_supports_only_amd64_and_arm64
