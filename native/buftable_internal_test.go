package native

import (
	"encoding/binary"
	"math/rand/v2"
	"reflect"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

// The moves buftable.go documents, and nothing else.
var documentedMoves = map[[2]bufState]bool{
	{bufAnnounced, bufQueued}:    true, // Queue
	{bufAnnounced, bufFree}:      true, // Revoke
	{bufQueued, bufFilling}:      true, // the device's thread takes it
	{bufQueued, bufDelivered}:    true, // filled in place, popped (Aravis)
	{bufQueued, bufAnnounced}:    true, // Stop gives it back
	{bufFilling, bufOutput}:      true, // filled
	{bufFilling, bufQueued}:      true, // given back unfilled
	{bufOutput, bufDelivered}:    true, // Dequeue
	{bufOutput, bufAnnounced}:    true, // Stop discards
	{bufDelivered, bufQueued}:    true, // Requeue
	{bufDelivered, bufAnnounced}: true, // Detach
}

// pathTo is a sequence of legal moves from ANNOUNCED to each state.
var pathTo = map[bufState][]bufState{
	bufAnnounced: {},
	bufQueued:    {bufQueued},
	bufFilling:   {bufQueued, bufFilling},
	bufOutput:    {bufQueued, bufFilling, bufOutput},
	bufDelivered: {bufQueued, bufFilling, bufOutput, bufDelivered},
}

type testX struct{ n int }

// tableWith returns a table holding one buffer in each state but FREE
// (index k for the k-th, in state order) and a FREE slot after them, and
// the index of the buffer in state s.
func tableWith(t *testing.T, s bufState) (*bufTable[testX], int) {
	t.Helper()
	tb := newBufTable[testX]()
	at := -1
	for st := bufAnnounced; st < nBufStates; st++ {
		i, res := tb.claim(make([]byte, 64), 64, 64)
		if res != StatusOK {
			t.Fatalf("claim: %v", res)
		}
		tb.slots[i].x.n = i + 100
		from := bufAnnounced
		for _, to := range pathTo[st] {
			if res := tb.move(i, from, to); res != StatusOK {
				t.Fatalf("%v -> %v on the way to %v: %v", from, to, st, res)
			}
			from = to
		}
		if st == s {
			at = i
		}
	}
	j, _ := tb.claim(make([]byte, 64), 64, 64) // and a FREE slot
	if _, res := tb.revoke(tb.id(j)); res != StatusOK {
		t.Fatal(res)
	}
	checkCounts(t, &tb)
	return &tb, at
}

// checkCounts asserts invariant 3: held and announced match the states.
func checkCounts[X any](t *testing.T, tb *bufTable[X]) {
	t.Helper()
	if tb.held != tb.count(bufDelivered) {
		t.Fatalf("held %d, %d buffers DELIVERED", tb.held, tb.count(bufDelivered))
	}
	if n := len(tb.slots) - tb.count(bufFree); tb.announced != n {
		t.Fatalf("announced %d, %d buffers not FREE", tb.announced, n)
	}
}

// snapshot copies a table, its slots and their memory's identity.
func snapshot[X any](tb *bufTable[X]) bufTable[X] {
	c := *tb
	c.slots = append([]bufSlot[X](nil), tb.slots...)
	return c
}

func TestBufTableMoveTableIsTheDocumentedOne(t *testing.T) {
	for from := range nBufStates + 1 {
		for to := range nBufStates + 1 {
			if got, want := legalMove(from, to), documentedMoves[[2]bufState{from, to}]; got != want {
				t.Errorf("legalMove(%v, %v) = %v, documented %v", from, to, got, want)
			}
		}
	}
}

// Every move between any two states (and an out-of-range one), through
// move and through apply: a legal one does exactly what the table says, an
// illegal one returns StatusBufferState and changes nothing.
func TestBufTableEveryMove(t *testing.T) {
	for from := bufAnnounced; from < nBufStates; from++ {
		for to := range nBufStates + 1 {
			for _, byID := range []bool{false, true} {
				tb, i := tableWith(t, from)
				before := snapshot(tb)
				id := tb.id(i)
				var res Status
				if byID {
					var j int
					j, res = tb.apply(id, from, to)
					if res == StatusOK && j != i {
						t.Fatalf("apply %v -> %v returned index %d, want %d", from, to, j, i)
					}
				} else {
					res = tb.move(i, from, to)
				}
				if !documentedMoves[[2]bufState{from, to}] {
					if res != StatusBufferState {
						t.Errorf("%v -> %v (by id %v): %v, want %v", from, to, byID, res, StatusBufferState)
					}
					if !reflect.DeepEqual(*tb, before) {
						t.Errorf("%v -> %v (by id %v) was refused but changed the table", from, to, byID)
					}
					continue
				}
				if res != StatusOK {
					t.Fatalf("%v -> %v (by id %v): %v", from, to, byID, res)
				}
				checkCounts(t, tb)
				b := tb.slots[i]
				if b.state != to || b.gen != before.slots[i].gen {
					t.Errorf("%v -> %v: state %v gen %d, was gen %d", from, to, b.state, b.gen, before.slots[i].gen)
				}
				if to == bufFree {
					if b.mem != nil || b.x != (testX{}) || tb.find(id) != -1 {
						t.Errorf("a revoked buffer keeps its memory %v, data %+v or id (%d)", b.mem != nil, b.x, tb.find(id))
					}
				} else if &b.mem[0] != &before.slots[i].mem[0] || b.x != before.slots[i].x || tb.find(id) != i {
					t.Errorf("%v -> %v changed the buffer's memory, data or id", from, to)
				}
				for k := range tb.slots {
					if k != i && !reflect.DeepEqual(tb.slots[k], before.slots[k]) {
						t.Errorf("%v -> %v of buffer %d changed buffer %d", from, to, i, k)
					}
				}
			}
		}
	}
}

// A move asked from a state the buffer is not in is refused, even when
// the move itself is legal.
func TestBufTableMoveFromTheWrongState(t *testing.T) {
	for actual := bufAnnounced; actual < nBufStates; actual++ {
		for pair := range documentedMoves {
			if pair[0] == actual {
				continue
			}
			tb, i := tableWith(t, actual)
			before := snapshot(tb)
			if res := tb.move(i, pair[0], pair[1]); res != StatusBufferState {
				t.Errorf("buffer %v, move %v -> %v: %v", actual, pair[0], pair[1], res)
			}
			if _, res := tb.apply(tb.id(i), pair[0], pair[1]); res != StatusBufferState {
				t.Errorf("buffer %v, apply %v -> %v: %v", actual, pair[0], pair[1], res)
			}
			if actual != bufAnnounced {
				if _, res := tb.revoke(tb.id(i)); res != StatusBufferState {
					t.Errorf("revoke a %v buffer: %v", actual, res)
				}
			}
			if !reflect.DeepEqual(*tb, before) {
				t.Errorf("buffer %v: a refused %v -> %v changed the table", actual, pair[0], pair[1])
			}
		}
	}
}

// Ids that name no live buffer of the table, and a closed table.
func TestBufTableIDs(t *testing.T) {
	tb, i := tableWith(t, bufAnnounced)
	other := newBufTable[testX]()
	oi, _ := other.claim(make([]byte, 64), 64, 64)
	id := tb.id(i)
	j, _ := tb.claim(make([]byte, 64), 64, 64)
	revoked := tb.id(j)
	if _, res := tb.revoke(revoked); res != StatusOK {
		t.Fatal(res)
	}
	free := -1
	for k := range tb.slots {
		if tb.slots[k].state == bufFree {
			free = k
		}
	}
	unknown := []BufferID{
		0, 1, other.id(oi), revoked,
		id ^ 1<<idIndexBits,              // another generation
		id&^idIndexMask | 1<<20,          // an index past the table
		id&^idIndexMask | BufferID(free), // a FREE slot
		id ^ 1<<(idIndexBits+idGenBits),  // another device's tag
	}
	before := snapshot(tb)
	for _, u := range unknown {
		if _, res := tb.apply(u, bufAnnounced, bufQueued); res != StatusUnknownBuffer {
			t.Errorf("apply %#x: %v", uint64(u), res)
		}
		if _, res := tb.revoke(u); res != StatusUnknownBuffer {
			t.Errorf("revoke %#x: %v", uint64(u), res)
		}
		if tb.find(u) != -1 {
			t.Errorf("find %#x found a buffer", uint64(u))
		}
	}
	for _, k := range []int{-1, len(tb.slots)} {
		if res := tb.move(k, bufAnnounced, bufQueued); res != StatusUnknownBuffer {
			t.Errorf("move slot %d: %v", k, res)
		}
	}
	if !reflect.DeepEqual(*tb, before) {
		t.Fatal("an unknown id changed the table")
	}

	// Closed: every id-based call and claim fail first with
	// StatusInvalidHandle, even for an id that is unknown too, and change
	// nothing.
	tb.closed = true
	before = snapshot(tb)
	for _, u := range []BufferID{id, revoked} {
		if _, res := tb.apply(u, bufAnnounced, bufQueued); res != StatusInvalidHandle {
			t.Errorf("apply %#x on a closed table: %v", uint64(u), res)
		}
		if _, res := tb.revoke(u); res != StatusInvalidHandle {
			t.Errorf("revoke %#x on a closed table: %v", uint64(u), res)
		}
	}
	if _, res := tb.claim(make([]byte, 1), 1, 64); res != StatusInvalidHandle {
		t.Errorf("claim on a closed table: %v", res)
	}
	if !reflect.DeepEqual(*tb, before) {
		t.Fatal("a closed table changed")
	}
}

func TestBufTableClaim(t *testing.T) {
	tb := newBufTable[testX]()
	mem := make([]byte, 4096)
	a, res := tb.claim(mem[1024:2048], 1024, 1024)
	if res != StatusOK {
		t.Fatal(res)
	}
	before := snapshot(&tb)
	for _, c := range []struct {
		lo, hi, need int
		want         Status
	}{
		{0, 1023, 1024, StatusBufferSize}, // checked before overlap
		{1000, 2100, 2000, StatusBufferSize},
		{0, 1025, 1024, StatusOverlap},
		{2047, 4096, 1024, StatusOverlap},
		{1024, 2048, 1024, StatusOverlap},
		{1500, 1600, 100, StatusOverlap},
		{0, 4096, 1024, StatusOverlap},
	} {
		if _, res := tb.claim(mem[c.lo:c.hi], c.hi-c.lo, c.need); res != c.want {
			t.Errorf("claim [%d,%d) need %d: %v, want %v", c.lo, c.hi, c.need, res, c.want)
		}
	}
	if !reflect.DeepEqual(tb, before) {
		t.Fatal("a refused claim changed the table")
	}
	// Adjacent memory is no overlap; memory the owner allocates (nil here)
	// is not checked.
	for _, r := range [][2]int{{0, 1024}, {2048, 4096}} {
		if _, res := tb.claim(mem[r[0]:r[1]], r[1]-r[0], 1024); res != StatusOK {
			t.Errorf("claim [%d,%d): %v", r[0], r[1], res)
		}
	}
	k, res := tb.claim(nil, 1024, 1024)
	if res != StatusOK || tb.slots[k].mem != nil || tb.slots[k].state != bufAnnounced {
		t.Fatalf("claim for an allocation: %v %+v", res, tb.slots[k])
	}
	checkCounts(t, &tb)

	// A revoked buffer's memory and slot are free again; its id is not.
	old := tb.id(a)
	if _, res := tb.revoke(old); res != StatusOK {
		t.Fatal(res)
	}
	b, res := tb.claim(mem[1024:2048], 1024, 1024)
	if res != StatusOK || b != a || tb.id(b) == old || tb.find(old) != -1 {
		t.Fatalf("reclaim: %v, slot %d (was %d), id %#x (was %#x)", res, b, a, uint64(tb.id(b)), uint64(old))
	}

	// The generation wraps past 0.
	tb.slots[b].gen = idGenMask
	if _, res := tb.revoke(tb.id(b)); res != StatusOK {
		t.Fatal(res)
	}
	if b2, _ := tb.claim(mem[1024:2048], 1024, 1024); b2 != b || tb.slots[b].gen != 1 {
		t.Fatalf("after generation %#x: slot %d generation %d", idGenMask, b2, tb.slots[b].gen)
	}

	// Full at MaxBuffers: StatusResource, checked after size and overlap.
	full := newBufTable[testX]()
	for range MaxBuffers {
		if _, res := full.claim(nil, 1, 1); res != StatusOK {
			t.Fatal(res)
		}
	}
	before = snapshot(&full)
	if _, res := full.claim(nil, 1, 1); res != StatusResource {
		t.Errorf("claim past MaxBuffers: %v", res)
	}
	if _, res := full.claim(nil, 1, 2); res != StatusBufferSize {
		t.Errorf("claim too small past MaxBuffers: %v", res)
	}
	if !reflect.DeepEqual(full, before) || full.announced != MaxBuffers {
		t.Fatal("a refused claim changed a full table")
	}
	if tb.tag == full.tag || tb.tag == 0 || full.tag == 0 {
		t.Errorf("tags %#x and %#x", tb.tag, full.tag)
	}
}

func TestBufTableFitsCountReset(t *testing.T) {
	tb, i := tableWith(t, bufDelivered)
	tb.slots[i].mem = tb.slots[i].mem[:32]
	if tb.fits(33) || !tb.fits(32) {
		t.Errorf("fits: a 32-byte buffer among 64-byte ones")
	}
	for s := bufAnnounced; s < nBufStates; s++ {
		if n := tb.count(s); n != 1 {
			t.Errorf("%d buffers %v, want 1", n, s)
		}
	}
	ids := make([]BufferID, len(tb.slots))
	gens := make([]uint64, len(tb.slots))
	for k := range tb.slots {
		ids[k], gens[k] = tb.id(k), tb.slots[k].gen
	}
	tb.closed = true
	tb.reset()
	if tb.held != 0 || tb.announced != 0 || tb.count(bufFree) != len(tb.slots) || !tb.fits(1<<30) {
		t.Fatalf("after reset: held %d announced %d, %d of %d FREE", tb.held, tb.announced, tb.count(bufFree), len(tb.slots))
	}
	for k := range tb.slots {
		if tb.slots[k].gen != gens[k] || tb.slots[k].mem != nil || tb.find(ids[k]) != -1 {
			t.Errorf("slot %d after reset: %+v", k, tb.slots[k])
		}
	}
}

// testOwner is a device as the sources use the table: a mutex over the
// table and its input and output queues, a thread that fills buffers
// without the lock while they are FILLING, and users that lease, read
// without the lock while DELIVERED, requeue, detach, queue and revoke.
type testOwner struct {
	mu        sync.Mutex
	cond      sync.Cond
	stop      bool
	tb        bufTable[testX]
	inQ, outQ fifo
}

// take waits for a buffer in q, pops it and moves it from -> to, as the
// device's thread and Dequeue do. It returns its index, id and memory, or
// false once the run stops (or the move is refused: t fails).
func (o *testOwner) take(t *testing.T, q *fifo, from, to bufState) (int, BufferID, []byte, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for q.n == 0 && !o.stop {
		o.cond.Wait()
	}
	if o.stop {
		return 0, 0, nil, false
	}
	i := q.pop()
	if res := o.tb.move(i, from, to); res != StatusOK {
		t.Errorf("%v -> %v of buffer %d popped from its queue: %v", from, to, i, res)
		o.halt()
		return 0, 0, nil, false
	}
	return i, o.tb.id(i), o.tb.slots[i].mem, true
}

// halt ends the run. Needs mu.
func (o *testOwner) halt() {
	o.stop = true
	o.cond.Broadcast()
}

func (o *testOwner) queue(id BufferID, from bufState) Status {
	i, res := o.tb.apply(id, from, bufQueued)
	if res == StatusOK {
		o.inQ.push(i)
		o.cond.Broadcast()
	}
	return res
}

// Concurrent Queue, fill, Dequeue, Requeue, Detach, Revoke and claim
// through the table, under -race: the thread's writes and the lease
// holders' reads of a buffer's memory happen without the lock, so a table
// that let one buffer be FILLING and DELIVERED at once shows as a race
// or as a torn frame; every call returns success or a documented refusal,
// and at the end every buffer is in exactly one place.
func TestBufTableConcurrent(t *testing.T) {
	const nbuf, size, frames = 6, 256, 3000
	o := &testOwner{tb: newBufTable[testX](), inQ: newFIFO(), outQ: newFIFO()}
	o.cond.L = &o.mu
	o.mu.Lock()
	for range nbuf {
		i, res := o.tb.claim(make([]byte, size), size, size)
		if res != StatusOK || o.queue(o.tb.id(i), bufAnnounced) != StatusOK {
			t.Fatal(res)
		}
	}
	o.mu.Unlock()

	var wg sync.WaitGroup
	var dequeued, refusedQueue, revoked atomic.Int64
	fail := func(format string, args ...any) {
		t.Errorf(format, args...)
		o.mu.Lock()
		o.halt()
		o.mu.Unlock()
	}
	// The device's thread.
	wg.Go(func() {
		for n := uint64(1); ; n++ {
			i, _, mem, ok := o.take(t, &o.inQ, bufQueued, bufFilling)
			if !ok {
				return
			}
			for k := 0; k < len(mem); k += 8 {
				binary.LittleEndian.PutUint64(mem[k:], n)
			}
			o.mu.Lock()
			if res := o.tb.move(i, bufFilling, bufOutput); res != StatusOK {
				o.mu.Unlock()
				fail("filled buffer %d: %v", i, res)
				return
			}
			o.outQ.push(i)
			o.cond.Broadcast()
			o.mu.Unlock()
		}
	})
	// Two lease holders.
	for c := range 2 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(c), 1))
			for {
				i, id, mem, ok := o.take(t, &o.outQ, bufOutput, bufDelivered)
				if !ok {
					return
				}
				n := binary.LittleEndian.Uint64(mem)
				for k := 0; k < len(mem); k += 8 {
					if v := binary.LittleEndian.Uint64(mem[k:]); v != n {
						fail("buffer %d torn: word %d is frame %d, word 0 frame %d", i, k/8, v, n)
						return
					}
				}
				if dequeued.Add(1) == frames {
					o.mu.Lock()
					o.halt()
					o.mu.Unlock()
				}
				o.mu.Lock()
				if rng.IntN(2) == 0 {
					if res := o.queue(id, bufDelivered); res != StatusOK {
						o.mu.Unlock()
						fail("requeue buffer %d: %v", i, res)
						return
					}
					o.mu.Unlock()
					continue
				}
				if _, res := o.tb.apply(id, bufDelivered, bufAnnounced); res != StatusOK {
					o.mu.Unlock()
					fail("detach buffer %d: %v", i, res)
					return
				}
				o.mu.Unlock()
				// The caller queues it again, racing with the meddler.
				o.mu.Lock()
				res := o.queue(id, bufAnnounced)
				o.mu.Unlock()
				switch res {
				case StatusOK:
				case StatusBufferState, StatusUnknownBuffer: // queued or revoked by the meddler
					refusedQueue.Add(1)
				default:
					fail("queue detached buffer %d: %v", i, res)
					return
				}
			}
		})
	}
	// A meddler holding every id: it queues and revokes whatever it can,
	// and announces a new buffer for each it revoked.
	wg.Go(func() {
		rng := rand.New(rand.NewPCG(7, 7))
		for {
			o.mu.Lock()
			if o.stop {
				o.mu.Unlock()
				return
			}
			k := rng.IntN(len(o.tb.slots))
			id := o.tb.id(k)
			if rng.IntN(4) == 0 {
				id ^= 1 << idIndexBits // a stale id
			}
			if rng.IntN(2) == 0 {
				if res := o.queue(id, bufAnnounced); res != StatusOK && res != StatusBufferState && res != StatusUnknownBuffer {
					o.mu.Unlock()
					fail("meddler's queue: %v", res)
					return
				}
				o.mu.Unlock()
				runtime.Gosched()
				continue
			}
			switch _, res := o.tb.revoke(id); res {
			case StatusOK:
				revoked.Add(1)
				i, res := o.tb.claim(make([]byte, size), size, size)
				if res != StatusOK || o.queue(o.tb.id(i), bufAnnounced) != StatusOK {
					o.mu.Unlock()
					fail("re-announce: %v", res)
					return
				}
			case StatusBufferState, StatusUnknownBuffer:
			default:
				o.mu.Unlock()
				fail("meddler's revoke: %v", res)
				return
			}
			o.mu.Unlock()
			runtime.Gosched()
		}
	})
	wg.Wait()
	if t.Failed() {
		return
	}

	// Every buffer is in exactly one place: QUEUED ones in inQ, OUTPUT ones
	// in outQ, none FILLING or DELIVERED (every thread has returned them).
	checkCounts(t, &o.tb)
	where := make(map[int]string)
	for o.inQ.n > 0 {
		i := o.inQ.pop()
		if where[i] != "" || o.tb.slots[i].state != bufQueued {
			t.Fatalf("buffer %d in inQ: %q, %v", i, where[i], o.tb.slots[i].state)
		}
		where[i] = "inQ"
	}
	for o.outQ.n > 0 {
		i := o.outQ.pop()
		if where[i] != "" || o.tb.slots[i].state != bufOutput {
			t.Fatalf("buffer %d in outQ: %q, %v", i, where[i], o.tb.slots[i].state)
		}
		where[i] = "outQ"
	}
	for i := range o.tb.slots {
		switch s := o.tb.slots[i].state; s {
		case bufQueued, bufOutput:
			if where[i] == "" {
				t.Errorf("buffer %d %v but in no queue", i, s)
			}
		case bufFree:
		default: // ANNOUNCED too: a detached buffer is queued again, a revoked one replaced
			t.Errorf("buffer %d left %v", i, s)
		}
	}
	if o.tb.announced != nbuf || o.tb.held != 0 {
		t.Errorf("%d buffers announced, %d held; want %d, 0", o.tb.announced, o.tb.held, nbuf)
	}
	t.Logf("%d frames, %d revoked and re-announced, %d queues refused", dequeued.Load(), revoked.Load(), refusedQueue.Load())
}
