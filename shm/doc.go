// Package shm is framering's hazard zone: the only package (with native/
// and the named eBPF loaders) that touches unsafe, golang.org/x/sys/unix
// and memory mappings. Everything above it sees []byte views and typed
// atomics whose validity ends at the owning value's Close; no
// unsafe.Pointer or uintptr leaves it.
//
// One job per file, and who uses it:
//
//	segment_linux.go  sealed, fallocated memfds (Segment)      ringbuf: the ring's two segments
//	mapping_linux.go  shared mappings and their bounds-checked ringbuf: every mapped word, through
//	                  typed atomic views (Mapping)                      ringbuf/layout_access.go only
//	futex_linux.go    futex wait/wake on mapped words          ringbuf: Publish wakes, Wait sleeps
//	fence_*.go        the seqlock reader's load fence          ringbuf: Peek, Lease.Check
//	prefetch*.go      cache-line prefetch hints (PREFETCHW)    ringbuf: a guessed slot's lines
//	socket_linux.go   the attach socket: SCM_RIGHTS, peer      ringbuf: the handshake, supervision
//	                  credentials and pidfd (Listener, Conn)
//	lock_linux.go     the producer's exclusive lock file       socket_linux.go (Listen)
//	pidfd_linux.go    pidfds and their watcher (Pidfd, Watcher) ringbuf: reclaiming dead consumers
//	filemap.go        read-only maps of regular files          archive: reading segments back
//	affinity_linux.go CPU affinity and scheduler slice of a     ringbuf: PinThread, PinProcess,
//	                  thread or a process (the latency mode's           LatencyProcess, LatencyThread
//	                  recipe)
//	deathsig_linux.go a child that dies with its parent         bench: the iceoryx RouDi
//	arch.go           refuses architectures without the
//	                  ordering argument of docs/LAYOUT.md 10.7
//
// The monotonic clock every layer uses is package clock, not here.
package shm
