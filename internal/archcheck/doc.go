// Package archcheck holds no code: its test enforces the project's layering
// (shared/ARCHITECTURE.md) over every package of the module:
//
//   - unsafe, "C", golang.org/x/sys/unix and github.com/edsrzf/mmap-go are
//     imported only by shm/ and native/ (the hazard zone), by an eBPF
//     package of its own, and by tests;
//   - consumers/ never imports producer/ or native/;
//   - native/ never imports ringbuf/;
//   - ringbuf/ imports nothing of the project but shm/ and frame/;
//   - shm/ and frame/ import nothing of the project.
package archcheck
