// Package bench is framering's measurement harness: it measures the ring
// and its alternatives in one run on the user's machine, as separate
// processes, and reports raw numbers, ratios and targets met or not met.
//
// Every scenario runs as processes of its own: the harness re-executes its
// own binary with EnvRole (and a JSON parameter block in the environment)
// set, and the child runs one role — ring producer, ring consumer, stream
// (Unix socket or pipe) sender or receiver, cache-line ping sender or
// receiver, the memory-copy probe, or the cache probe — and prints one
// result line on
// stdout. A binary that embeds the harness calls IsChild and RunChild
// before anything else (see cmd/frbench and the package's TestMain).
//
// What is measured:
//
//   - Handoff latency: publish-side CLOCK_MONOTONIC timestamp (taken
//     immediately before Publish, stored in the frame's metadata) against
//     the consumer's clock right after Next returns the lease, at a rate
//     low enough that no queue forms, with a busy-polling consumer
//     (Spin < 0), one sleeping on the futex, and one sleeping in the
//     latency mode (ringbuf.Options.Latency, GOMAXPROCS=1). The producer
//     paces with clock_nanosleep(TIMER_ABSTIME) (pace.go), not a Go timer.
//     Each row sits beside the same run's floor: the cache-line ping for
//     busy-poll, a C futex ping (cping/futex_ping.c, built with cc, same
//     pacing) for the futex rows.
//   - Throughput with the producer writing every byte of every frame, for
//     several consumer counts, lossy and lossless, with consumers that only
//     take the lease, that read every byte with a memory-bound word sum
//     (wordSum), and that checksum every byte (frame.Sum64, the integrity
//     check); lease-only rows also at a slot count whose working set fits
//     the last-level cache, labelled. The cache is the effective one: the
//     smaller of the size sysfs reports and the one the cache probe
//     measures (cache.go: the producer's fill rotating through growing
//     working sets).
//   - Comparison with an earlier run (frbench -compare OLD): every common
//     metric's ratio new/old.
//   - Baselines in the same run: the same frames over a Unix stream socket
//     and over a pipe (fanned out to as many receivers as the ring row has
//     consumers), GStreamer shmsink/shmsrc when gst-launch-1.0 exists,
//     Eclipse iceoryx (a C-binding publisher and subscriber on loaned
//     chunks through a RouDi the harness starts and stops; same payloads,
//     pacing, buffer count and read kernel as the ring's rows), and
//     single-core memory copy bandwidth of the frame size between buffers
//     larger than the last-level cache.
//   - Cost: CPU time per frame of every process (the sum of its threads'
//     on-CPU time from /proc/self/task/*/schedstat, split into user and
//     system time from /proc/self/stat), and allocations per frame
//     (runtime.MemStats.Mallocs over the measured window).
//   - Scale: 1 to 16 consumers attached, publish cost and latency.
//   - The floor: a two-process cache-line ping over one shared cache line
//     of a shm segment, with no ring.
//
// Bounds: every loop has a frame count and a wall-clock cap; every child
// watches its stdin (a pipe from the harness) and the harness kills every
// child still running when a scenario's cap passes or the harness's
// context ends.
//
// The package imports neither unsafe nor golang.org/x/sys/unix (nor
// syscall): shared memory comes from shm, and process statistics from
// /proc.
package bench
