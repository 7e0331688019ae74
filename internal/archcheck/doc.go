// Package archcheck holds no code: its tests enforce the project's layering
// and house rules (shared/ARCHITECTURE.md, STYLE.md) over every package of
// the module, in one place:
//
//   - the hazard zone: unsafe, "C", golang.org/x/sys/unix and
//     github.com/edsrzf/mmap-go are imported only by shm/ and native/ (and
//     an eBPF loader package of its own); syscall and runtime/cgo are kept
//     out of the layers above the ring as well;
//   - layering, transitively (go list -deps): consumers/ and the consumer
//     commands never depend on producer/ or native/ (a consumer knows the
//     ring, not who fills it); native/ never depends on ringbuf/; ringbuf/
//     depends on nothing of the project but shm/ and frame/; shm/ and
//     frame/ depend on nothing of the project; analysis/ on frame/ only;
//   - library packages never call panic, log.Fatal or os.Exit (mains may
//     exit with a code).
package archcheck
