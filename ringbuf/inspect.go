package ringbuf

// Inspect: the state of a ring whose producer does not answer.
//
// A producer that is stopped (SIGSTOP) or hung keeps its socket: the kernel
// still accepts connections, but no welcome ever comes, so an attach (and
// ringctl, which attaches as an observer) could only time out. Inspect reads
// the ring's state from shared memory without the producer's help: it takes
// the producer's pid from the socket's peer credentials (recorded by the
// kernel at connect time) and opens the producer's two memfds through
// /proc/PID/fd — which needs the producer's uid, or root — then checks and
// maps them read-only exactly as an attach does (docs/LAYOUT.md 6.3 steps
// 5-9, Appendix B.4). It writes nothing to either segment and takes no
// table entry, so it cannot disturb the ring even if the producer wakes.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/framering/framering/shm"
)

// memfdTag is the ring's name as its memfds carry it: the socket file's
// name without ".sock" (a name is at most 64 bytes; memfd names allow 249).
func memfdTag(socketPath string) string {
	return strings.TrimSuffix(filepath.Base(socketPath), ".sock")
}

// Inspect returns a snapshot of the ring at the socket of name (or
// socketPath) read from the producer's memory through /proc, for a
// producer that does not answer an attach. It fails with ErrNoSuchRing or
// ErrProducerGone as Attach does, and wraps os.ErrPermission when the
// producer's memory is not ours to open.
func Inspect(ctx context.Context, name, socketPath string) (Snapshot, error) {
	path, err := resolvePath(name, socketPath)
	if err != nil {
		return Snapshot{}, fmt.Errorf("inspect: %w", err)
	}
	conn, err := shm.Dial(path)
	if err != nil {
		switch {
		case errors.Is(err, shm.ErrNoListener):
			return Snapshot{}, fmt.Errorf("inspect %s: %w", path, ErrNoSuchRing)
		case errors.Is(err, shm.ErrRefused):
			return Snapshot{}, fmt.Errorf("inspect %s: %w", path, ErrProducerGone)
		}
		return Snapshot{}, fmt.Errorf("inspect %s: %w", path, err)
	}
	cred, err := conn.Peer()
	conn.Close() // we send nothing: the producer, if it wakes, sees an empty connection
	if err != nil {
		return Snapshot{}, fmt.Errorf("inspect %s: %w", path, err)
	}
	if err := ctx.Err(); err != nil {
		return Snapshot{}, err
	}
	data, ctl, err := openProcSegments(cred.Pid, memfdTag(path))
	if err != nil {
		return Snapshot{}, fmt.Errorf("inspect %s (producer pid %d): %w", path, cred.Pid, err)
	}
	snap, err := inspectSegments(data, ctl)
	if err != nil {
		return Snapshot{}, fmt.Errorf("inspect %s (producer pid %d): %w", path, cred.Pid, err)
	}
	return snap, nil
}

// openProcSegments finds the producer's data and control memfds for the
// ring tagged tag among /proc/pid/fd and opens them read-only.
func openProcSegments(pid int, tag string) (data, ctl *os.File, err error) {
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("list the producer's descriptors: %w", err)
	}
	wantData, wantCtl := "/memfd:framering-data:"+tag+" (deleted)", "/memfd:framering-control:"+tag+" (deleted)"
	for _, e := range ents {
		link, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		var dst **os.File
		switch link {
		case wantData:
			dst = &data
		case wantCtl:
			dst = &ctl
		default:
			continue
		}
		if *dst != nil {
			continue // the first of two rings of one name in one process (tests); see Snapshot.Epoch
		}
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			if data != nil {
				data.Close()
			}
			if ctl != nil {
				ctl.Close()
			}
			return nil, nil, fmt.Errorf("open the producer's segment: %w", err)
		}
		*dst = f
	}
	if data == nil || ctl == nil {
		if data != nil {
			data.Close()
		}
		if ctl != nil {
			ctl.Close()
		}
		return nil, nil, fmt.Errorf("%w: the producer holds no segments of this ring", ErrProducerGone)
	}
	return data, ctl, nil
}

// inspectSegments checks, maps (read-only) and validates the two memfds
// as an attach does, and snapshots them. It takes the files over.
func inspectSegments(df, cf *os.File) (Snapshot, error) {
	dataSeg, err := shm.OpenSegment(df, shm.SealShrink|shm.SealGrow|shm.SealFutureWrite|shm.SealSeal, headerSize, false)
	if err != nil {
		cf.Close()
		return Snapshot{}, fmt.Errorf("data segment: %w: %w", ErrCorrupt, err)
	}
	defer dataSeg.Close()
	ctlSeg, err := shm.OpenSegment(cf, shm.SealShrink|shm.SealGrow|shm.SealSeal, headerSize, false)
	if err != nil {
		return Snapshot{}, fmt.Errorf("control segment: %w: %w", ErrCorrupt, err)
	}
	defer ctlSeg.Close()
	dataMap, err := dataSeg.Map(false)
	if err != nil {
		return Snapshot{}, err
	}
	defer dataMap.Close()
	ctlMap, err := ctlSeg.Map(false)
	if err != nil {
		return Snapshot{}, err
	}
	defer ctlMap.Close()
	geo, err := decodeDataHeader(dataMap.Bytes(), dataMap.Len())
	if err != nil {
		return Snapshot{}, err
	}
	if err := decodeControlHeader(ctlMap.Bytes(), ctlMap.Len(), geo); err != nil {
		return Snapshot{}, err
	}
	data, err := newDataRO(dataMap, &geo)
	if err != nil {
		return Snapshot{}, err
	}
	ctl, err := copyCtlWords(ctlMap, &geo)
	if err != nil {
		return Snapshot{}, err
	}
	return snapshot(data, ctl), nil
}
