// Package schedlat splits a thread's wake-up latency with eBPF: for every
// time a thread of one target process is woken and then switched in, it
// records sched_waking → sched_wakeup (the wake reaching the target CPU's
// run queue: an IPI on a remote wake-up) and sched_wakeup → sched_switch
// (the wait on the run queue).
//
// The programs are raw tracepoints written with cilium/ebpf's asm package
// (no clang, no generated code); task_struct's pid and tgid offsets come
// from the running kernel's BTF and are read with bpf_probe_read_kernel.
// Loading needs root (CAP_BPF and CAP_PERFMON); New reports why it cannot.
//
// Maps:
//
//	target  array[1] u64     tgid to trace (0: none)
//	waking  hash u32 → u64   tid → ktime of its last sched_waking
//	wakeup  hash u32 → u64   tid → ktime of its last sched_wakeup
//	count   array[1] u64     events written so far
//	events  array[N] event   ring of events, index count mod N
//
// An event is four little-endian u64: tid, waking→wakeup ns (0 if no
// waking was seen), wakeup→switch ns, and the ktime (CLOCK_MONOTONIC) of
// the switch.
package schedlat

import (
	"errors"
	"fmt"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
)

// ErrNoBTF is returned when the kernel's BTF does not describe task_struct's
// pid and tgid.
var ErrNoBTF = errors.New("no usable kernel BTF for task_struct")

// Event is one wake-up of a traced thread.
type Event struct {
	Tid uint32
	// WakingToWakeup is sched_waking → sched_wakeup (0 if not seen).
	WakingToWakeup time.Duration
	// RunQueue is sched_wakeup → sched_switch into the thread.
	RunQueue time.Duration
	// SwitchNs is the CLOCK_MONOTONIC time of the switch.
	SwitchNs int64
}

type rawEvent struct {
	Tid, Waking, RunQ, Switch uint64
}

// Tracer is loaded, attached programs and their maps.
type Tracer struct {
	target, waking, wakeup, count, events *ebpf.Map
	progs                                 []*ebpf.Program
	links                                 []link.Link
	n                                     uint32
}

// New loads and attaches the programs, with room for n events (rounded up
// to a power of two). Close it.
func New(n int) (*Tracer, error) {
	pidOff, tgidOff, err := taskOffsets()
	if err != nil {
		return nil, fmt.Errorf("load sched tracer: %w", err)
	}
	size := uint32(1)
	for size < uint32(max(n, 1)) {
		size <<= 1
	}
	t := &Tracer{n: size}
	ok := false
	defer func() {
		if !ok {
			t.Close()
		}
	}()
	for _, m := range []struct {
		p    **ebpf.Map
		spec ebpf.MapSpec
	}{
		{&t.target, ebpf.MapSpec{Name: "target", Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1}},
		{&t.waking, ebpf.MapSpec{Name: "waking", Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 4096}},
		{&t.wakeup, ebpf.MapSpec{Name: "wakeup", Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 4096}},
		{&t.count, ebpf.MapSpec{Name: "count", Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1}},
		{&t.events, ebpf.MapSpec{Name: "events", Type: ebpf.Array, KeySize: 4, ValueSize: 32, MaxEntries: size}},
	} {
		if *m.p, err = ebpf.NewMap(&m.spec); err != nil {
			return nil, fmt.Errorf("load sched tracer: map %s: %w", m.spec.Name, err)
		}
	}
	for _, p := range []struct {
		tp    string
		insns asm.Instructions
	}{
		{"sched_waking", markProg(t.target, t.waking, pidOff, tgidOff)},
		{"sched_wakeup", markProg(t.target, t.wakeup, pidOff, tgidOff)},
		{"sched_switch", switchProg(t, pidOff, tgidOff)},
	} {
		prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "frbench_" + p.tp[6:], Type: ebpf.RawTracepoint,
			Instructions: p.insns, License: "GPL"})
		if err != nil {
			return nil, fmt.Errorf("load sched tracer: program for %s: %w", p.tp, err)
		}
		t.progs = append(t.progs, prog)
		l, err := link.AttachRawTracepoint(link.RawTracepointOptions{Name: p.tp, Program: prog})
		if err != nil {
			return nil, fmt.Errorf("load sched tracer: attach %s: %w", p.tp, err)
		}
		t.links = append(t.links, l)
	}
	ok = true
	return t, nil
}

// taskOffsets finds task_struct.pid and .tgid in the kernel's BTF.
func taskOffsets() (pid, tgid int32, err error) {
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return 0, 0, fmt.Errorf("%w: %v", ErrNoBTF, err)
	}
	var task *btf.Struct
	if err := spec.TypeByName("task_struct", &task); err != nil {
		return 0, 0, fmt.Errorf("%w: %v", ErrNoBTF, err)
	}
	pid, tgid = -1, -1
	for _, m := range task.Members {
		switch m.Name {
		case "pid":
			pid = int32(m.Offset.Bytes())
		case "tgid":
			tgid = int32(m.Offset.Bytes())
		}
	}
	if pid < 0 || tgid < 0 {
		return 0, 0, fmt.Errorf("%w: no top-level pid/tgid members", ErrNoBTF)
	}
	return pid, tgid, nil
}

// Stack slots of the programs (relative to the frame pointer).
const (
	slotZero  = -4  // u32 0: key of the single-entry arrays
	slotTgid  = -8  // u32 task->tgid
	slotPid   = -12 // u32 task->pid: key of waking/wakeup
	slotIndex = -16 // u32 events index
	slotTime  = -24 // u64 ktime
)

// prologue loads the task pointer at ctx+argOff into R7 and jumps to
// "exit" unless its tgid is the target's; it leaves task->pid at slotPid.
// R6 holds ctx; R8 is clobbered.
func prologue(target *ebpf.Map, argOff int16, pidOff, tgidOff int32) asm.Instructions {
	return asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.LoadMem(asm.R7, asm.R6, argOff, asm.DWord),
		asm.StoreImm(asm.RFP, slotZero, 0, asm.Word),
		asm.LoadMapPtr(asm.R1, target.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, slotZero),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "exit"),
		asm.LoadMem(asm.R8, asm.R0, 0, asm.DWord),
		asm.JEq.Imm(asm.R8, 0, "exit"),
		// bpf_probe_read_kernel(fp+slotTgid, 4, task+tgidOff)
		asm.Mov.Reg(asm.R1, asm.RFP),
		asm.Add.Imm(asm.R1, slotTgid),
		asm.Mov.Imm(asm.R2, 4),
		asm.Mov.Reg(asm.R3, asm.R7),
		asm.Add.Imm(asm.R3, tgidOff),
		asm.FnProbeReadKernel.Call(),
		asm.JNE.Imm(asm.R0, 0, "exit"),
		asm.LoadMem(asm.R1, asm.RFP, slotTgid, asm.Word),
		asm.JNE.Reg(asm.R1, asm.R8, "exit"),
		// bpf_probe_read_kernel(fp+slotPid, 4, task+pidOff)
		asm.Mov.Reg(asm.R1, asm.RFP),
		asm.Add.Imm(asm.R1, slotPid),
		asm.Mov.Imm(asm.R2, 4),
		asm.Mov.Reg(asm.R3, asm.R7),
		asm.Add.Imm(asm.R3, pidOff),
		asm.FnProbeReadKernel.Call(),
		asm.JNE.Imm(asm.R0, 0, "exit"),
	}
}

func epilogue() asm.Instructions {
	return asm.Instructions{
		asm.Mov.Imm(asm.R0, 0).WithSymbol("exit"),
		asm.Return(),
	}
}

// markProg records the time of sched_waking or sched_wakeup (args[0] is
// the woken task) for threads of the target.
func markProg(target, ts *ebpf.Map, pidOff, tgidOff int32) asm.Instructions {
	insns := prologue(target, 0, pidOff, tgidOff)
	insns = append(insns,
		asm.FnKtimeGetNs.Call(),
		asm.StoreMem(asm.RFP, slotTime, asm.R0, asm.DWord),
		asm.LoadMapPtr(asm.R1, ts.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, slotPid),
		asm.Mov.Reg(asm.R3, asm.RFP),
		asm.Add.Imm(asm.R3, slotTime),
		asm.Mov.Imm(asm.R4, 0), // BPF_ANY
		asm.FnMapUpdateElem.Call(),
	)
	return append(insns, epilogue()...)
}

// switchProg runs on sched_switch (args[2] is the next task): for a
// thread of the target with a recorded wakeup, it writes an event and
// forgets the marks.
func switchProg(t *Tracer, pidOff, tgidOff int32) asm.Instructions {
	insns := prologue(t.target, 16, pidOff, tgidOff)
	insns = append(insns,
		// R8 = wakeup[pid], or exit.
		asm.LoadMapPtr(asm.R1, t.wakeup.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, slotPid),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "exit"),
		asm.LoadMem(asm.R8, asm.R0, 0, asm.DWord),
		// R9 = waking[pid] or 0.
		asm.LoadMapPtr(asm.R1, t.waking.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, slotPid),
		asm.FnMapLookupElem.Call(),
		asm.Mov.Imm(asm.R9, 0),
		asm.JEq.Imm(asm.R0, 0, "now"),
		asm.LoadMem(asm.R9, asm.R0, 0, asm.DWord),
		// R6 = now (ctx is no longer needed).
		asm.FnKtimeGetNs.Call().WithSymbol("now"),
		asm.Mov.Reg(asm.R6, asm.R0),
		asm.LoadMapPtr(asm.R1, t.wakeup.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, slotPid),
		asm.FnMapDeleteElem.Call(),
		asm.LoadMapPtr(asm.R1, t.waking.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, slotPid),
		asm.FnMapDeleteElem.Call(),
		// index = count[0]++ mod n
		asm.LoadMapPtr(asm.R1, t.count.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, slotZero),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "exit"),
		asm.LoadMem(asm.R1, asm.R0, 0, asm.DWord),
		asm.Mov.Reg(asm.R2, asm.R1),
		asm.Add.Imm(asm.R2, 1),
		asm.StoreMem(asm.R0, 0, asm.R2, asm.DWord),
		asm.And.Imm(asm.R1, int32(t.n-1)),
		asm.StoreMem(asm.RFP, slotIndex, asm.R1, asm.Word),
		asm.LoadMapPtr(asm.R1, t.events.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, slotIndex),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "exit"),
		asm.LoadMem(asm.R1, asm.RFP, slotPid, asm.Word),
		asm.StoreMem(asm.R0, 0, asm.R1, asm.DWord),
		asm.Mov.Imm(asm.R1, 0),
		asm.JEq.Imm(asm.R9, 0, "store"),
		asm.Mov.Reg(asm.R1, asm.R8),
		asm.Sub.Reg(asm.R1, asm.R9),
		asm.StoreMem(asm.R0, 8, asm.R1, asm.DWord).WithSymbol("store"),
		asm.Mov.Reg(asm.R1, asm.R6),
		asm.Sub.Reg(asm.R1, asm.R8),
		asm.StoreMem(asm.R0, 16, asm.R1, asm.DWord),
		asm.StoreMem(asm.R0, 24, asm.R6, asm.DWord),
	)
	return append(insns, epilogue()...)
}

// SetTarget starts tracing the threads of process tgid (0 stops).
func (t *Tracer) SetTarget(tgid int) error {
	if err := t.target.Put(uint32(0), uint64(tgid)); err != nil {
		return fmt.Errorf("set trace target: %w", err)
	}
	return nil
}

// Events returns the events recorded so far, oldest first (at most the
// capacity New was given: older ones were overwritten).
func (t *Tracer) Events() ([]Event, error) {
	var n uint64
	if err := t.count.Lookup(uint32(0), &n); err != nil {
		return nil, fmt.Errorf("read trace events: %w", err)
	}
	first := uint64(0)
	if n > uint64(t.n) {
		first = n - uint64(t.n)
	}
	evs := make([]Event, 0, n-first)
	for i := first; i < n; i++ {
		var r rawEvent
		if err := t.events.Lookup(uint32(i&uint64(t.n-1)), &r); err != nil {
			return nil, fmt.Errorf("read trace events: %w", err)
		}
		evs = append(evs, Event{Tid: uint32(r.Tid), WakingToWakeup: time.Duration(r.Waking),
			RunQueue: time.Duration(r.RunQ), SwitchNs: int64(r.Switch)})
	}
	return evs, nil
}

// Close detaches the programs and frees everything.
func (t *Tracer) Close() error {
	var errs []error
	for _, l := range t.links {
		errs = append(errs, l.Close())
	}
	for _, p := range t.progs {
		errs = append(errs, p.Close())
	}
	for _, m := range []*ebpf.Map{t.target, t.waking, t.wakeup, t.count, t.events} {
		if m != nil {
			errs = append(errs, m.Close())
		}
	}
	return errors.Join(errs...)
}
