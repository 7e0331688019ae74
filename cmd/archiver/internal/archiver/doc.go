// Package archiver is the logic of cmd/archiver: a lossless consumer that
// stores every frame of a ring in an archive (package archive), and accounts
// for every frame it could not store.
//
// # The one copy
//
// The archiver attaches as a Lossless consumer (package consumers) in
// zero-copy mode by default: each frame's bytes are a read-only view of the
// ring's shared memory, and archive.Writer.Append writes them with pwrite(2)
// straight from that view into the page cache. That write is the only copy.
// The frame is released as soon as Append returns.
//
// # Loss accounting
//
// Every frame the producer offered is either stored or counted as lost with
// a cause, and every counted loss is written to the archive as a gap record
// (archive.AppendGap) as soon as the archive can take one. Losses are found by
// comparing each frame with the last one accounted for (the "position": its
// producer epoch, frame id and ring sequence number):
//
//   - Ring sequence numbers skipped within one attachment are frames that
//     were published and that this consumer did not get: cause "missed"
//     (a lossless consumer should never see one), or "evicted" for the frames
//     published while the archiver was re-attaching after an eviction.
//   - Frame ids skipped beyond those are frames lost upstream, before the
//     ring. They are attributed to the ring's drop counters (Snapshot:
//     DropNoSlot as "blocked", DropUnderrun, DropSource) by the delta since
//     the last attribution, greedily.
//     Totals per cause are exact once every drop is followed by a frame;
//     which gap a drop is assigned to is approximate when drops of several
//     causes interleave within the ring's lag.
//   - A new epoch (the producer restarted) while the archiver ran or was
//     down: if frame ids continue across the restart, the ids between are
//     lost, explained first by the old run's unattributed drops and the new
//     run's drop counters, the rest "producer restart". If ids restarted,
//     only what is known is recorded: the old run's trailing drops, and the
//     new run's frames published before the archiver attached (its first
//     sequence number - 1) and its drop counters.
//   - The same epoch after the archiver itself was restarted (kill -9, or a
//     clean stop): the ids between the last frame in the archive and the
//     first frame after the restart are "consumer_down" losses. The epoch of the
//     archive's last records is kept in a small sidecar file (StateFile).
//   - A full disk (archive.ErrDiskFull): the frame is lost with cause "disk
//     full", the archiver keeps consuming (so the producer is never blocked
//     by it), and the losses are written as gap records, before the next
//     frame, as soon as an append succeeds again.
//   - Other write errors: "write error"; frames the archive refuses (bad
//     metadata): "rejected".
//
// A fresh archive starts with the first frame the archiver gets: what the
// producer published before that was never the archiver's to store.
//
// Drops that no later frame brackets are recorded when their ids are known
// by the counter model: the drops of a run that ended (the producer closed
// the ring or died) are the ids after its last frame, recorded at the next
// run's first frame or, if the archiver stops first, at exit. Drops of a
// producer that is still running when the archiver stops are not recorded:
// the next start's "archiver down" gap covers them.
//
// # Crash consistency
//
// archive.Open recovers the archive at start (cutting a torn tail). On
// SIGINT/SIGTERM the current frame is finished, pending losses are written
// if the disk allows, and the archive is fsynced and closed.
package archiver
