// Package shm is framering's hazard zone: the only package (with native/)
// that touches unsafe, golang.org/x/sys/unix and memory mappings.
//
// It provides
//   - sealed memfd segments, reserved with fallocate so that a full tmpfs
//     fails at creation instead of raising SIGBUS later (Segment);
//   - shared mappings of those segments, read-write or read-only, with
//     bounds- and alignment-checked typed atomic views of mapped words
//     (Mapping, and its Uint32At/Uint64At);
//   - futex wait and wake on mapped words, shared between processes;
//   - a Unix socket that passes segments with SCM_RIGHTS and reports the
//     peer's credentials and pidfd (Listener, Conn), and a pidfd watcher;
//   - a read-only mapping of a regular file (FileMapping).
//
// Everything above this package sees []byte views and typed atomics whose
// validity ends at the owning value's Close. No unsafe.Pointer or uintptr
// leaves it.
package shm
