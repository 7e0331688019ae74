//go:build cgo

package native

// The C calls: one Go function per SDK function, each with the C
// prototype in its comment, returning the SDK's Status unwrapped (callers
// wrap it with what they were doing).
//
// Invariants kept by this file:
//
//  1. No Go pointer is kept by C. Pointers passed in (&info, &h, config
//     structs) are used by C only for the duration of the call; the
//     "#cgo noescape" lines below promise exactly that, which lets those
//     arguments live on the Go stack (Dequeue allocates nothing). Memory
//     that C keeps (announced buffers) is never Go memory: Announce checks
//     it is a shared mapping first (checkShared), and C.fr_allocate_buffer's
//     memory is C's own.
//  2. No C function calls back into Go ("#cgo nocallback").
//  3. The Go mirrors of the C structs (abi_cgo.go) have the C layout,
//     checked at compile time for sizes and by TestCABILayout for offsets.

/*
#cgo CFLAGS: -O2 -Wall -Wextra
#cgo LDFLAGS: -pthread
#cgo noescape fr_open
#cgo noescape fr_get_config
#cgo noescape fr_set_config
#cgo noescape fr_announce_buffer
#cgo noescape fr_allocate_buffer
#cgo noescape fr_dequeue
#cgo noescape fr_get_counters
#cgo noescape fr_fill_pattern
#cgo nocallback fr_open
#cgo nocallback fr_close
#cgo nocallback fr_get_config
#cgo nocallback fr_set_config
#cgo nocallback fr_announce_buffer
#cgo nocallback fr_allocate_buffer
#cgo nocallback fr_revoke_buffer
#cgo nocallback fr_queue_buffer
#cgo nocallback fr_requeue_buffer
#cgo nocallback fr_detach_buffer
#cgo nocallback fr_start
#cgo nocallback fr_stop
#cgo nocallback fr_dequeue
#cgo nocallback fr_get_counters
#cgo nocallback fr_fill_pattern
#include "frsdk.h"
*/
import "C"

import (
	"unsafe"

	"github.com/framering/framering/frame"
)

// frOpen wraps
//
//	fr_status fr_open(const fr_config *cfg, fr_handle *out);
func frOpen(cfg *cConfig) (uint64, Status) {
	var h C.fr_handle
	st := C.fr_open((*C.fr_config)(unsafe.Pointer(cfg)), &h)
	return uint64(h), Status(st)
}

// frClose wraps
//
//	fr_status fr_close(fr_handle h);
func frClose(h uint64) Status {
	return Status(C.fr_close(C.fr_handle(h)))
}

// frGetConfig wraps
//
//	fr_status fr_get_config(fr_handle h, fr_config *out);
func frGetConfig(h uint64, out *cConfig) Status {
	return Status(C.fr_get_config(C.fr_handle(h), (*C.fr_config)(unsafe.Pointer(out))))
}

// frSetConfig wraps
//
//	fr_status fr_set_config(fr_handle h, const fr_config *cfg);
func frSetConfig(h uint64, cfg *cConfig) Status {
	return Status(C.fr_set_config(C.fr_handle(h), (*C.fr_config)(unsafe.Pointer(cfg))))
}

// frAnnounceBuffer wraps
//
//	fr_status fr_announce_buffer(fr_handle h, void *base, uint64_t size, fr_buffer_id *out);
//
// base must not be Go memory: C keeps it until revoke or close.
func frAnnounceBuffer(h uint64, base unsafe.Pointer, size uint64) (BufferID, Status) {
	var id C.fr_buffer_id
	st := C.fr_announce_buffer(C.fr_handle(h), base, C.uint64_t(size), &id)
	return BufferID(id), Status(st)
}

// frAllocateBuffer wraps
//
//	fr_status fr_allocate_buffer(fr_handle h, uint64_t size, fr_buffer_id *out, void **base_out);
func frAllocateBuffer(h uint64, size uint64) (BufferID, unsafe.Pointer, Status) {
	var id C.fr_buffer_id
	var base unsafe.Pointer
	st := C.fr_allocate_buffer(C.fr_handle(h), C.uint64_t(size), &id, &base)
	return BufferID(id), base, Status(st)
}

// frRevokeBuffer wraps
//
//	fr_status fr_revoke_buffer(fr_handle h, fr_buffer_id id);
func frRevokeBuffer(h uint64, id BufferID) Status {
	return Status(C.fr_revoke_buffer(C.fr_handle(h), C.fr_buffer_id(id)))
}

// frQueueBuffer wraps
//
//	fr_status fr_queue_buffer(fr_handle h, fr_buffer_id id);
func frQueueBuffer(h uint64, id BufferID) Status {
	return Status(C.fr_queue_buffer(C.fr_handle(h), C.fr_buffer_id(id)))
}

// frRequeueBuffer wraps
//
//	fr_status fr_requeue_buffer(fr_handle h, fr_buffer_id id);
func frRequeueBuffer(h uint64, id BufferID) Status {
	return Status(C.fr_requeue_buffer(C.fr_handle(h), C.fr_buffer_id(id)))
}

// frDetachBuffer wraps
//
//	fr_status fr_detach_buffer(fr_handle h, fr_buffer_id id);
func frDetachBuffer(h uint64, id BufferID) Status {
	return Status(C.fr_detach_buffer(C.fr_handle(h), C.fr_buffer_id(id)))
}

// frStart wraps
//
//	fr_status fr_start(fr_handle h);
func frStart(h uint64) Status {
	return Status(C.fr_start(C.fr_handle(h)))
}

// frStop wraps
//
//	fr_status fr_stop(fr_handle h);
func frStop(h uint64) Status {
	return Status(C.fr_stop(C.fr_handle(h)))
}

// frDequeue wraps
//
//	fr_status fr_dequeue(fr_handle h, int64_t timeout_ns, fr_frame_info *out);
func frDequeue(h uint64, timeoutNS int64, out *cFrameInfo) Status {
	return Status(C.fr_dequeue(C.fr_handle(h), C.int64_t(timeoutNS), (*C.fr_frame_info)(unsafe.Pointer(out))))
}

// frGetCounters wraps
//
//	fr_status fr_get_counters(fr_handle h, fr_counters *out);
func frGetCounters(h uint64, out *cCounters) Status {
	return Status(C.fr_get_counters(C.fr_handle(h), (*C.fr_counters)(unsafe.Pointer(out))))
}

// frFillPattern wraps
//
//	fr_status fr_fill_pattern(const fr_config *cfg, void *dst, uint64_t size, uint64_t frame_id);
//
// dst may be Go memory: C uses it only during the call.
func frFillPattern(cfg *cConfig, dst []byte, id uint64) Status {
	return Status(C.fr_fill_pattern((*C.fr_config)(unsafe.Pointer(cfg)), unsafe.Pointer(unsafe.SliceData(dst)), C.uint64_t(len(dst)), C.uint64_t(id)))
}

// frStatusString wraps
//
//	const char *fr_status_string(fr_status s);
func frStatusString(s Status) string {
	return C.GoString(C.fr_status_string(C.fr_status(s)))
}

// frABICount wraps
//
//	int fr_abi_count(void);
func frABICount() int { return int(C.fr_abi_count()) }

// frABIName wraps
//
//	const char *fr_abi_name(int i);
func frABIName(i int) string { return C.GoString(C.fr_abi_name(C.int(i))) }

// frABIValue wraps
//
//	uint64_t fr_abi_value(int i);
func frABIValue(i int) uint64 { return uint64(C.fr_abi_value(C.int(i))) }

// The Go constants are the C enum's: each index below is 0 iff the pair is
// equal, and any other constant index is out of range and fails the build.
var (
	_ = [1]struct{}{}[int(StatusOK)^C.FR_OK]
	_ = [1]struct{}{}[int(StatusInvalidHandle)^C.FR_ERR_INVALID_HANDLE]
	_ = [1]struct{}{}[int(StatusInvalidArgument)^C.FR_ERR_INVALID_ARGUMENT]
	_ = [1]struct{}{}[int(StatusBusy)^C.FR_ERR_BUSY]
	_ = [1]struct{}{}[int(StatusNotStarted)^C.FR_ERR_NOT_STARTED]
	_ = [1]struct{}{}[int(StatusTimeout)^C.FR_ERR_TIMEOUT]
	_ = [1]struct{}{}[int(StatusUnknownBuffer)^C.FR_ERR_UNKNOWN_BUFFER]
	_ = [1]struct{}{}[int(StatusBufferState)^C.FR_ERR_BUFFER_STATE]
	_ = [1]struct{}{}[int(StatusOverlap)^C.FR_ERR_OVERLAP]
	_ = [1]struct{}{}[int(StatusBufferSize)^C.FR_ERR_BUFFER_SIZE]
	_ = [1]struct{}{}[int(StatusFormat)^C.FR_ERR_FORMAT]
	_ = [1]struct{}{}[int(StatusGeometry)^C.FR_ERR_GEOMETRY]
	_ = [1]struct{}{}[int(StatusNoMemory)^C.FR_ERR_NO_MEMORY]
	_ = [1]struct{}{}[int(StatusResource)^C.FR_ERR_RESOURCE]
	_ = [1]struct{}{}[int(FrameComplete)^C.FR_FRAME_COMPLETE]
	_ = [1]struct{}{}[int(FrameIncomplete)^C.FR_FRAME_INCOMPLETE]
	_ = [1]struct{}{}[MaxBuffers^C.FR_MAX_BUFFERS]
	_ = [1]struct{}{}[frame.MaxDimension^C.FR_MAX_DIMENSION]
	_ = [1]struct{}{}[frame.StampSize^C.FR_STAMP_SIZE]
	_ = [1]struct{}{}[uint32(frame.Mono8)^C.FR_PFNC_MONO8]
	_ = [1]struct{}{}[uint32(frame.Mono10)^C.FR_PFNC_MONO10]
	_ = [1]struct{}{}[uint32(frame.Mono12)^C.FR_PFNC_MONO12]
	_ = [1]struct{}{}[uint32(frame.Mono16)^C.FR_PFNC_MONO16]
	_ = [1]struct{}{}[uint32(frame.Mono10p)^C.FR_PFNC_MONO10P]
	_ = [1]struct{}{}[uint32(frame.Mono12p)^C.FR_PFNC_MONO12P]
	_ = [1]struct{}{}[uint32(frame.Mono10Packed)^C.FR_PFNC_MONO10_PACKED]
	_ = [1]struct{}{}[uint32(frame.Mono12Packed)^C.FR_PFNC_MONO12_PACKED]
	_ = [1]struct{}{}[uint32(frame.BayerGR8)^C.FR_PFNC_BAYER_GR8]
	_ = [1]struct{}{}[uint32(frame.BayerRG8)^C.FR_PFNC_BAYER_RG8]
	_ = [1]struct{}{}[uint32(frame.BayerGB8)^C.FR_PFNC_BAYER_GB8]
	_ = [1]struct{}{}[uint32(frame.BayerBG8)^C.FR_PFNC_BAYER_BG8]
	_ = [1]struct{}{}[uint32(frame.BayerGR16)^C.FR_PFNC_BAYER_GR16]
	_ = [1]struct{}{}[uint32(frame.BayerRG16)^C.FR_PFNC_BAYER_RG16]
	_ = [1]struct{}{}[uint32(frame.BayerGB16)^C.FR_PFNC_BAYER_GB16]
	_ = [1]struct{}{}[uint32(frame.BayerBG16)^C.FR_PFNC_BAYER_BG16]
	_ = [1]struct{}{}[uint32(frame.RGB8)^C.FR_PFNC_RGB8]
	_ = [1]struct{}{}[uint32(frame.BGR8)^C.FR_PFNC_BGR8]
	_ = [1]struct{}{}[uint32(frame.YUV422_8)^C.FR_PFNC_YUV422_8]
	_ = [1]struct{}{}[uint32(frame.YUV422_8_UYVY)^C.FR_PFNC_YUV422_8_UYVY]
)
