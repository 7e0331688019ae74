// Package ringstat is the one picture of a ring's state that every view
// reads (ringctl, the producer's stats line, the pipeline summary, metrics,
// the web view). It looks at rings as an observer (ringbuf.RoleObserver: no
// consumer table entry, no holds, nothing written to the ring) and turns
// what it sees into reports, rendered as aligned text tables or JSON.
//
//   - List finds the rings in ringbuf.RuntimeDir and attaches to each to
//     tell a live producer from a socket left behind by a dead one.
//   - Show takes two snapshots of one ring a short window apart, for rates.
//   - Watch repeats Show at an interval.
//   - Build turns one snapshot (and an earlier one, for rates) into a
//     Report; Rates does it for a stream of snapshots, with rates over a
//     window; Report.LogAttrs and Report.Line are the report as a log line
//     and as a progress line.
//   - Host watches every ring on the host for long-running views (metrics,
//     the web view): one observer attachment per ring, reused for every
//     snapshot and Peek, a stopped producer read through /proc.
//
// Epochs appear in JSON as 16 hex digits (a JSON number would lose
// precision in most JSON readers), durations as integer nanoseconds in
// fields named *_ns, rates as floats per second.
package ringstat
