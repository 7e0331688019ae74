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
// a cause of the one table (package loss), and every counted loss is
// written to the archive as a gap record (archive.AppendGap) as soon as the
// archive can take one. Gap records carry the producer epoch, the frame ids
// and, for frames that were published, their ring sequence numbers. Losses
// are found by comparing each frame with the last one accounted for (the
// "position": its epoch, frame id and ring sequence number); account.go
// has the rules:
//
//   - Drops right before a frame are read from its DropsBefore (the ring's
//     layout v2): exact causes and counts. A lossless consumer that is never
//     evicted learns every drop this way.
//   - Ring sequence numbers skipped within one attachment are frames that
//     were published and that this consumer did not get: "missed" (a
//     lossless consumer should never see one), or "evicted" for the frames
//     published while the archiver was re-attaching after an eviction. The
//     drops before those frames went with their DropsBefore: they are
//     attributed from the ring's drop table (snapshots), greedily within the
//     budget the frame ids give (approximate causes, exact counts).
//   - A new epoch (the producer restarted): the old run's drops after its
//     last frame (from its final drop table), the new run's frames published
//     before the archiver got one ("producer_restart", with their ring
//     seqs), and its drops (DropsBefore, then the table); ids the counts do
//     not explain across the restart are "producer_restart".
//   - The same epoch after the archiver itself was restarted (kill -9, or a
//     clean stop): the frames published meanwhile are "consumer_down", by
//     ring seq (the archive stores the identity of its last frame); drops
//     before them too, their causes unknown to the archiver.
//   - A full disk (archive.ErrDiskFull): the frame is lost with cause
//     "disk_full", the archiver keeps consuming (so the producer is never
//     blocked by it), and the losses are written as gap records, before the
//     next frame, as soon as an append succeeds again.
//   - A lease revoked while its frame was written, and the slot reused
//     (archive.ErrPayloadChanged): the record is taken back and the frame
//     is lost as "evicted".
//   - Other write errors: "write_error"; frames the archive refuses (bad
//     metadata): "rejected".
//
// No loss is ever recorded as "unknown": frame ids skipped that neither the
// drop accounting nor the sequence numbers explain are not losses the
// pipeline knows of (a source whose ids skip); they are counted in the
// summary (unexplained_id_gaps), not recorded.
//
// A fresh archive starts with the first frame the archiver gets: what the
// producer published before that was never the archiver's to store.
//
// Drops that no later frame brackets are recorded when their ids are known
// by the counter model: the drops of a run that ended (the producer closed
// the ring or died) are the ids after its last frame, recorded at the next
// run's first frame or, if the archiver stops first, at exit. Drops of a
// producer that is still running when the archiver stops are not recorded:
// the next start's "consumer_down" gap covers them.
//
// # Crash consistency
//
// archive.Open recovers the archive at start (cutting a torn tail). On
// SIGINT/SIGTERM the current frame is finished, pending losses are written
// if the disk allows, and the archive is fsynced and closed.
package archiver
