// Package frame defines what every layer of framering agrees a frame is:
// pixel formats (GenICam PFNC codes), frame geometry, and the deterministic
// test pattern that the simulated frame grabber (native/, in C) and the
// pure-Go synthetic source both generate byte for byte.
//
// The pattern is a contract, like the ring layout: docs/PATTERN.md-level
// precision is kept in the comments of pattern.go so that a C program (the
// simulated SDK in native/) can produce identical bytes, and a test in
// native/ proves that it does.
//
// This package is pure Go, imports nothing of the project, and allocates
// nothing on its per-frame paths (Generator.Fill, Verify, Sum64).
package frame
