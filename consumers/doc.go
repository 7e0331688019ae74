// Package consumers is the library a framering consumer is written with. It
// wraps a ringbuf.Reader in a range-over-func loop that handles the chores
// every consumer has: attaching (and waiting for a producer that is not
// there yet), releasing each frame when the loop moves on, re-attaching
// after a producer restart, and counting what was delivered, skipped and
// missed.
//
// A complete consumer:
//
//	c, err := consumers.Attach(ctx, consumers.Options{Ring: "cam0", Name: "mine"})
//	if err != nil {
//		return err
//	}
//	defer c.Close()
//	for f := range c.Frames(ctx) {
//		process(f.Meta(), f.Bytes())
//	}
//	return c.Err()
//
// # Ownership
//
// A Frame yielded by Frames is valid until the loop moves on to the next
// frame (or ends); it is then released automatically. In zero-copy mode (the
// default) its Bytes alias read-only shared memory and its slot is held by
// this consumer while the frame is valid: the producer cannot reuse it. Keep
// extends a frame's life past its loop iteration; the kept frame holds its
// slot until its Release.
//
// In zero-copy mode the loop reuses one Frame object for every frame that is
// not kept, so that steady-state iteration allocates nothing. Keep therefore
// returns a separate handle (one small allocation per Keep) that refers to
// the same lease; the loop's Frame object may be reused for the next frame
// as soon as the iteration ends. Keep the handle Keep returns, never the
// loop's *Frame or its Bytes.
//
// (Taking a frame that is already published allocates nothing. Going to
// sleep on the ring's futex when none is, inside ringbuf.Reader.Wait,
// currently allocates a context.AfterFunc registration of three small
// objects per sleep.)
//
// In safe-copy mode (Options.Copy) every frame is copied into a fresh,
// private, writable buffer and its slot is released at once, before the
// frame is yielded. The frames and metadata are the same as in zero-copy
// mode, and each Frame object and its Bytes belong to the caller for as
// long as it wants them. A consumer that misbehaves in zero-copy mode but
// not in safe-copy mode keeps frame memory past its lease (an ownership
// bug); one that misbehaves in both has an algorithm bug.
//
// # Producer restarts
//
// A producer has an epoch, a random identity of one producer run; its
// sequence numbers start at 1. With Options.Reattach, when the producer
// closes the ring or dies, Frames logs it, waits for a new producer on the
// same ring and continues from it: Frame.Epoch tells the runs apart, and
// Stats counts the re-attaches. A lossless consumer re-attaches from the new
// producer's first frame (ringbuf.Options.From = 1), so frames published
// before it found the new producer are delivered too, as long as the ring
// still has them (older ones count as missed). Without it, Frames ends and Err reports
// ErrClosed or ErrProducerGone. Eviction (ErrEvicted) always ends Frames.
//
// The package knows the ring and nothing of who fills it: it imports
// ringbuf and never the producer or the native SDK.
package consumers
