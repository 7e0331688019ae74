// Package archive stores every frame of a machine-vision line on disk,
// losslessly, in an append-only segment format that survives kill -9 at any
// moment and a full disk.
//
// An archive is a directory of segments, NNNNNNNN.frseg, rotated by size,
// each with a sidecar index NNNNNNNN.fridx of (seq, offset) entries. A
// segment is a header followed by records; a record is a header, a payload
// (optionally compressed with S2 or zstd) and zero padding to 8 bytes,
// covered by a CRC32C. Every record has a sequence number, dense across the
// archive: a frame record carries a frame and its metadata, a gap record says
// which frames were lost and why, so the archive accounts for every frame it
// was offered. FORMAT.md specifies the bytes for readers in other languages.
//
// The Writer (Open, Append, AppendGap, Sync, Close) writes with plain
// positioned writes and fsyncs by policy; an fsync in flight does not hold up
// appends (only a rotation waits for it, and seals the old segment before
// the new one takes a record). Open recovers a crashed archive: it
// cuts a torn tail of the last segment and rebuilds its index. A full disk is
// ErrDiskFull, after which the archive is still valid and the Writer usable.
//
// The Reader (OpenReader, Next, Seek, ReadSeq) reads segments through
// read-only mappings (shm.OpenFile) and checks every length and offset
// before it touches a byte; damage is a sentinel error (ErrCorrupt,
// ErrTruncated, ErrVersion), never a panic. Verify checks a whole archive and
// reports; Export writes frames as PNG or TIFF files.
//
// This package uses neither unsafe nor golang.org/x/sys/unix nor any mmap
// package itself (a test enforces it): mappings come from shm.
package archive
