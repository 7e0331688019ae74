package ringbuf

// Attach handling and consumer supervision.
//
// Invariants kept by this file:
//   - An entry of the consumer table is handed to at most one live peer:
//     mu guards entries[], and an entry is marked free only at the end of
//     reclaim, after every holder bit of its previous owner was cleared.
//   - A peer is dropped exactly once, whichever of its socket closing, its
//     pidfd becoming readable or a kernel exit report is noticed first
//     (drop checks that the entry still belongs to that peer).
//   - Clean detach or reclaim is decided by the one goroutine that reads
//     the connection, its handler, after it read every byte the consumer
//     sent: a departure noticed elsewhere (departed) ends the reading side
//     and waits for the handler to drop the peer. Only a handler that does
//     not finish within departWait is overruled (departed then decides from
//     the bytes still queued).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/framering/framering/shm"
)

const handshakeTimeout = 2 * time.Second

func (p *Producer) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, shm.ErrClosed) || p.closed.Load() {
				return
			}
			p.log.Warn("accept failed", "err", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		p.mu.Lock()
		if p.closed.Load() {
			p.mu.Unlock()
			c.Close()
			return
		}
		p.conns[c] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		go func() {
			defer p.wg.Done()
			defer func() {
				p.mu.Lock()
				delete(p.conns, c)
				p.mu.Unlock()
			}()
			p.handle(c)
		}()
	}
}

func (p *Producer) allowed(cred shm.PeerCred) bool {
	if len(p.cfg.AllowUIDs) == 0 && len(p.cfg.AllowGIDs) == 0 {
		return true
	}
	return slices.Contains(p.cfg.AllowUIDs, cred.UID) || slices.Contains(p.cfg.AllowGIDs, cred.GID)
}

func (p *Producer) refuse(c *shm.Conn, status uint32, why string, args ...any) {
	var b [msgSize]byte
	welcome{status: status, entry: noEntry}.encode(b[:])
	c.Send(b[:])
	c.Close()
	p.log.Warn("attach refused", append([]any{"reason", why}, args...)...)
}

func (p *Producer) handle(c *shm.Conn) {
	cred, err := c.Peer()
	if err != nil {
		c.Close()
		p.log.Warn("attach: no peer credentials", "err", err)
		return
	}
	// Read the hello before judging the peer, so that a refused peer reads
	// our answer instead of failing its own send.
	c.SetDeadline(time.Now().Add(handshakeTimeout))
	var b [msgSize]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		c.Close()
		p.log.Warn("attach: no hello", "pid", cred.Pid, "err", err)
		return
	}
	if !p.allowed(cred) {
		p.refuse(c, statusDenied, "uid/gid not allowed", "pid", cred.Pid, "uid", cred.UID, "gid", cred.GID)
		return
	}
	h, err := decodeHello(b[:])
	if err != nil {
		status := uint32(statusBadRequest)
		if errors.Is(err, ErrIncompatible) {
			status = statusIncompatible
		}
		p.refuse(c, status, "bad hello", "pid", cred.Pid, "err", err)
		return
	}
	if p.closed.Load() {
		p.refuse(c, statusClosing, "ring closing", "pid", cred.Pid)
		return
	}
	pr := &peer{conn: c, cred: cred, name: h.name, mode: h.mode, start: h.start, entry: -1, chain: h.flags&helloChainWake != 0,
		handled: make(chan struct{})}
	defer close(pr.handled) // after any drop below: departed waits for it
	if h.role == RoleConsumer {
		if err := p.register(pr); err != nil {
			status := uint32(statusFull)
			if errors.Is(err, ErrClosed) {
				status = statusClosing // a re-attaching consumer waits for the next producer
			}
			p.refuse(c, status, err.Error(), "pid", cred.Pid, "name", h.name)
			return
		}
	} else {
		p.mu.Lock()
		closing := p.closed.Load()
		if !closing {
			p.observers[pr] = struct{}{}
			if !pr.chain {
				p.plainObs.Add(1)
			}
		}
		p.mu.Unlock()
		if closing {
			p.refuse(c, statusClosing, "ring closing", "pid", cred.Pid)
			return
		}
	}
	entry := noEntry
	if pr.entry >= 0 {
		entry = uint32(pr.entry)
	}
	welcome{status: statusOK, entry: entry, epoch: p.geo.epoch, dataFileSize: p.dataSeg.Size(), controlFileSize: p.ctlSeg.Size()}.encode(b[:])
	if err := c.Send(b[:], p.dataSeg.File(), p.ctlSeg.File()); err != nil {
		p.log.Warn("attach: send segments failed", "pid", cred.Pid, "err", err)
		p.drop(pr)
		return
	}
	c.SetDeadline(time.Time{})
	p.mu.Lock()
	pr.welcomed = true
	p.mu.Unlock()
	if pr.entry >= 0 {
		p.log.Info("consumer attached", "name", pr.name, "pid", cred.Pid, "uid", cred.UID, "mode", pr.mode, "entry", pr.entry)
	} else {
		p.log.Debug("observer attached", "pid", cred.Pid)
	}
	// The connection carries nothing more from the peer but, maybe, a bye
	// (anything else is read and discarded); its end is the peer's
	// departure (Close, exit, or kill -9: the kernel closes it; or departed
	// ended our reading side, after the bytes already sent).
	hooks := p.hooks.Load()
	var msg [msgSize]byte
	for {
		_, err := io.ReadFull(c, msg[:])
		if hooks != nil && hooks.read != nil {
			hooks.read(pr, msg[:], err)
		}
		if err != nil {
			break
		}
		if isBye(msg[:]) {
			pr.bye.Store(true)
		}
	}
	p.drop(pr)
}

// register gives pr a table entry.
func (p *Producer) register(pr *peer) error {
	pidfd, err := pr.conn.PeerPidfd()
	if err != nil {
		p.log.Warn("attach: no pidfd for peer, supervising by socket only", "pid", pr.cred.Pid, "err", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed.Load() {
		if pidfd != nil {
			pidfd.Close()
		}
		return fmt.Errorf("register: %w", ErrClosed)
	}
	i := slices.Index(p.entries[:], nil)
	if i < 0 {
		if pidfd != nil {
			pidfd.Close()
		}
		return fmt.Errorf("consumer table full (%d)", MaxConsumers)
	}
	pr.entry, pr.pidfd = i, pidfd
	// Before the welcome (so before the consumer can set its waiter bit).
	if pr.chain {
		p.noChain.And(^(uint64(1) << i))
	} else {
		p.noChain.Or(uint64(1) << i)
	}
	p.attaches++
	pr.key = uint64(i) | p.attaches<<8
	c := p.ctl
	c.entryMode(i).Store(uint32(pr.mode))
	c.entryPid(i).Store(uint32(pr.cred.Pid))
	c.entryUID(i).Store(uint32(pr.cred.UID))
	c.pidfdIno(i).Store(0)
	if pidfd != nil {
		c.pidfdIno(i).Store(pidfd.Inode())
	}
	c.attachNs(i).Store(uint64(time.Now().UnixNano()))
	name := c.name(i)
	clear(name)
	copy(name, pr.name)
	c.resetEntry(i)
	// A new consumer starts with the next frame published. A lossless one
	// must be pinning that frame before Acquire can consider its slot: join
	// the lossless set with a cursor that pins everything, and only then
	// load published. Any Acquire that runs after the frame published+1
	// exists loads the lossless set after our Or (sequentially consistent:
	// Or < our load of published < the producer's store of published+1 <
	// its next Acquire), so it sees a cursor of 1 or of published+1.
	c.cursor(i).Store(1)
	if pr.mode == Lossless {
		p.lossless.Or(1 << i)
	}
	cursor := p.Published() + 1
	if pr.start != 0 && pr.start < cursor {
		// Frames already published are wanted too (a lossless consumer
		// re-attaching to a restarted producer). Those still in the ring
		// are delivered; older ones are counted as missed. A start above
		// published+1 is lowered to it (docs/LAYOUT.md 6.2).
		cursor = pr.start
	}
	c.cursor(i).Store(cursor)
	// Active last: the entry is complete before anyone reads it as such.
	c.entryState(i).Store(entryActive)
	c.attached().Or(1 << i)
	p.entries[i] = pr
	if pidfd != nil {
		if err := p.watcher.Add(pidfd, pr.key); err != nil {
			p.log.Warn("attach: cannot watch pidfd", "pid", pr.cred.Pid, "err", err)
		}
	}
	return nil
}

// watch reclaims consumers whose process exited, even if their socket is
// still open (inherited by a child, or not yet closed by the kernel).
func (p *Producer) watch(ctx context.Context) {
	defer p.wg.Done()
	p.watcher.Run(ctx, func(key uint64) {
		p.mu.Lock()
		var pr *peer
		if i := int(key & 0xff); i < MaxConsumers && p.entries[i] != nil && p.entries[i].key == key {
			pr = p.entries[i]
		}
		p.mu.Unlock()
		if pr != nil {
			p.log.Info("consumer process exited", "name", pr.name, "pid", pr.cred.Pid)
			p.departed(pr)
		}
	})
}

// ConsumerExited is told, by a kernel-side observer (an eBPF program on the
// process-exit tracepoint), that process pid is exiting. Every consumer of
// that pid whose exit its own pidfd confirms (shm.Pidfd.Exiting: the
// kernel's PF_EXITING flag, so a reused pid is never mistaken) is reclaimed
// now, before its memory is torn down and its socket closed: each is
// dropped (its holds cleared, a bye it sent counted as a clean detach) by
// the time ConsumerExited returns. It returns how many consumers it
// reclaimed. Socket EOF and pidfd readiness remain the authoritative paths;
// this one is only earlier.
func (p *Producer) ConsumerExited(pid int) int {
	var cands, dead []*peer
	p.mu.Lock()
	for _, pr := range p.entries {
		if pr != nil && pr.cred.Pid == pid && pr.pidfd != nil {
			cands = append(cands, pr)
		}
	}
	p.mu.Unlock()
	// /proc is read without mu (never I/O under it). A candidate reclaimed
	// meanwhile is skipped by drop; its pidfd stays open until then.
	for _, pr := range cands {
		if pr.pidfd.Exiting() {
			dead = append(dead, pr)
		}
	}
	for _, pr := range dead {
		p.log.Info("consumer exiting (kernel report)", "name", pr.name, "pid", pid)
		p.departed(pr)
	}
	return len(dead)
}

// defaultDepartWait bounds departed's wait for a connection's handler. The
// handler finishes as soon as it is scheduled; the bound only keeps a stuck
// one from stalling the pidfd watcher or ConsumerExited for good.
const defaultDepartWait = 2 * time.Second

// departed drops a consumer whose process exit was noticed before its
// connection ended (pidfd readiness, a kernel report), and returns once it
// is dropped: its holds are cleared and its entry is free.
//
// A clean detach sends its bye and then exits, so when the exit is noticed
// the bye may still be queued on the connection, or read by the handler and
// not yet recorded. departed therefore decides nothing itself: it ends the
// connection's reading side (the process is gone or going; what it sent
// is still read, and nothing it could send later counts), so the handler
// reads what was queued, recording a bye, then reads EOF and drops the
// peer; departed waits for that. Only if the handler has not finished
// within departWait does departed drop the peer itself, a bye among the
// bytes still queued making it a clean detach; a bye the stuck handler had
// read but not recorded then counts as a reclaim.
func (p *Producer) departed(pr *peer) {
	pr.conn.CloseRead() // fails only when the handler has closed it: dropped already
	if h := p.hooks.Load(); h != nil && h.departing != nil {
		h.departing(pr)
	}
	t := time.NewTimer(p.departWait)
	defer t.Stop()
	select {
	case <-pr.handled:
		return
	case <-t.C:
	}
	p.log.Warn("consumer exited, its connection's handler did not finish: deciding from the queued bytes",
		"name", pr.name, "pid", pr.cred.Pid, "waited", p.departWait)
	var queued [16 * msgSize]byte
	if n, err := pr.conn.Pending(queued[:]); err == nil {
		for off := 0; off+msgSize <= n; off += msgSize {
			if isBye(queued[off : off+msgSize]) {
				pr.bye.Store(true)
				break
			}
		}
	}
	p.drop(pr)
}

// drop forgets a peer: a consumer's holds are reclaimed and its entry freed.
func (p *Producer) drop(pr *peer) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pr.conn.Close()
	if pr.entry < 0 {
		if _, ok := p.observers[pr]; ok && !pr.chain {
			p.plainObs.Add(-1)
		}
		delete(p.observers, pr)
		return
	}
	i := pr.entry
	if p.entries[i] != pr {
		return // already reclaimed
	}
	bit := uint64(1) << i
	p.lossless.And(^bit)
	p.ctl.attached().And(^bit)
	// Mark the entry free first for observers; the bit stays unusable
	// until entries[i] is cleared below.
	p.ctl.entryState(i).Store(entryFree)
	var reclaimed uint64
	for k := uint32(0); k < p.geo.slots; k++ {
		// Clear the departed consumer's holds. And returns the old mask.
		if p.ctl.hold(k).And(^bit)&bit != 0 {
			reclaimed++
		}
	}
	p.ctl.waiters().And(^bit)
	p.noChain.And(^bit)
	p.data.detaches().Add(1)
	clean := pr.bye.Load()
	if !clean {
		p.data.reclaims().Add(1)
	}
	p.data.reclaimedHolds().Add(reclaimed)
	// Its bits are all clear: a new owner of the entry starts with live bits.
	p.evicted.And(^bit)
	if pr.pidfd != nil {
		p.watcher.Remove(pr.pidfd)
		pr.pidfd.Close()
	}
	p.entries[i] = nil
	p.log.Info("consumer detached", "name", pr.name, "pid", pr.cred.Pid, "entry", i, "clean", clean, "holds_reclaimed", reclaimed)
}

// evict takes entry i's protection away (docs/LAYOUT.md 11.4): its cursor no
// longer pins frames and its holds are revoked (ignored, and cleared).
// who is the attachment blamed (its attach time); a new owner of the entry
// is left alone. It reports whether it evicted. It runs on the acquisition
// goroutine, so it does nothing that can block: the note to the consumer
// is sent from a goroutine of its own, with a write-only deadline (a read
// deadline would also end the handler's read of that connection and
// detach a live consumer).
func (p *Producer) evict(i int, who uint64, reason EvictReason) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	pr := p.entries[i]
	if pr == nil || !pr.welcomed || p.ctl.attachNs(i).Load() != who || p.ctl.entryState(i).Load() != entryActive {
		return false // gone, not yet welcomed, a new owner, or evicted already
	}
	bit := uint64(1) << i
	// From here on Acquire ignores the consumer (this goroutine's later
	// scans load the mask after this store) ...
	p.evicted.Or(bit)
	p.lossless.And(^bit)
	// ... and the entry state is stored before any such scan (10.8): a
	// borrow racing with us sees it, a release after the reads learns of
	// the revocation from it.
	p.ctl.evictReason(i).Store(uint32(reason))
	p.ctl.entryState(i).Store(entryEvicted)
	var revoked uint64
	for k := uint32(0); k < p.geo.slots; k++ {
		if p.ctl.hold(k).And(^bit)&bit != 0 {
			revoked++
		}
	}
	p.ctl.revokedHolds(i).Add(revoked)
	p.data.revokedHolds().Add(revoked)
	p.data.evictions().Add(1)
	go func(c *shm.Conn) {
		var b [msgSize]byte
		encodeNote(b[:], noteEvicted, uint32(reason))
		c.SetWriteDeadline(time.Now().Add(time.Second))
		c.Send(b[:]) // a closed connection (the consumer left) is fine
	}(pr.conn)
	p.log.Warn("consumer evicted", "name", pr.name, "pid", pr.cred.Pid, "entry", i, "reason", reason.String(),
		"holds_revoked", revoked, "evict_after", p.cfg.EvictAfter)
	return true
}
