//go:build aravis && cgo

package native

// The callback mode's one entry from C into Go. It lives alone in this
// file because a file with //export may declare, but not define, C
// functions in its preamble.

// #include <stdint.h>
import "C"

import "runtime/cgo"

// framering_arv_notify is called by Aravis's stream receive thread (a
// thread Go did not create) for every completed buffer, in the callback
// mode (arvshim.c stream_cb). It must not block or allocate: it pokes a
// one-slot channel without waiting. The handle is deleted only after every
// stream that could call it has been freed (aravisDevice.Close).
//
//export framering_arv_notify
func framering_arv_notify(h C.uintptr_t) {
	if n, ok := cgo.Handle(h).Value().(*arvNotifier); ok {
		select {
		case n.ch <- struct{}{}:
		default:
		}
	}
}
