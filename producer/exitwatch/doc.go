// Package exitwatch observes process exits in the kernel: an eBPF program,
// written instruction by instruction with github.com/cilium/ebpf/asm (no C
// compiler, no BTF needed), runs on the sched_process_exit tracepoint and
// reports, through a BPF ring buffer, the exit of every process it was
// asked to watch.
//
// The producer uses it beside the ring's own supervision (a consumer's
// socket closing, its pidfd becoming readable), which stays authoritative:
// a Watcher only observes and logs. When the program cannot be loaded or
// attached (no CAP_BPF/CAP_PERFMON, a kernel without BPF ring buffers, no
// tracefs and no raw tracepoints...), New returns ErrUnavailable with the
// reason, and the caller carries on without it.
//
// # What counts as an exit
//
// A process (a thread group) has exited when its last thread exits. Kernels
// whose sched_process_exit tracepoint carries group_dead (6.x) say exactly
// that; the program then reports the thread-group id when group_dead is
// true, whichever thread exited last. On older kernels the program falls
// back to reporting the exit of the group leader (pid == tgid), which
// normally is the process's exit but may precede the other threads' (a
// leader that called pthread_exit). Exit.GroupDead says which rule applied.
//
// # Attachment
//
// The classic tracepoint (sched/sched_process_exit, through tracefs) is
// tried first, reading its fields at the offsets its format file gives;
// without tracefs, the raw tracepoint (BPF_RAW_TRACEPOINT_OPEN, no tracefs
// needed) is used, reading group_dead from the tracepoint's second
// argument, and falling back to the leader rule if the kernel's
// tracepoint has no such argument.
//
// # The program
//
//	r6 = ctx
//	r7 = bpf_get_current_pid_tgid()        // the exiting task is current
//	group_dead rule: if !ctx.group_dead goto out
//	leader rule:     if (u32)r7 != r7>>32 goto out
//	key = r7 >> 32                         // tgid
//	if !bpf_map_lookup_elem(&watched, &key) goto out
//	event = r7                             // u64: tgid<<32 | tid
//	bpf_ringbuf_output(&events, &event, 8, 0)
//	out: return 0
//
// The watched set is a BPF hash map filled by Watch and Unwatch, so the
// kernel writes nothing for processes nobody asked about.
package exitwatch
