// Package frame defines what every layer of framering agrees a frame is:
// pixel formats (GenICam PFNC codes), frame geometry, and the deterministic
// test pattern that the simulated frame grabber (native/, in C) and the
// pure-Go synthetic source both generate byte for byte.
//
// Pixel-format knowledge lives in one table (format.go): each format's
// PFNC name and code, bits per pixel, significant bits per sample, packing
// (whole bytes, PFNC's LSB-first "p" bit packing, or GigE Vision's pairs
// of pixels in three bytes), kind (mono, Bayer
// with its color filter array, RGB with its byte order, YUV 4:2:2 with its
// byte order) and width rule. Every property the project needs — the
// name, row size, validity, the analyzer's and the exporter's sample
// layout — is read from that table, not from switches on format codes.
// pixels.go holds the rules shared by every consumer of samples: scaling
// an 8-bit value to n bits (Expand8), an n-bit sample to 16 (To16), and
// both packings (Pack16, Unpack16).
//
// The pattern is a contract, like the ring layout: it is specified in
// docs/LAYOUT.md Appendix A (and the comments of pattern.go) precisely
// enough that a C program (the simulated SDK in native/) produces
// identical bytes for every format, and a test in native/ proves that it
// does.
//
// This package is pure Go, imports nothing of the project, and allocates
// nothing on its per-frame paths (Generator.Fill, Verify, Sum64, Pack16,
// Unpack16).
package frame
