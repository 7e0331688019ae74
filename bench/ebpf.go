package bench

import "context"

func (h *harness) ebpf(ctx context.Context) {
	h.rep.EBPF = &EBPFRow{Skipped: "not implemented in this build"}
	h.skip("ebpf: " + h.rep.EBPF.Skipped)
}
