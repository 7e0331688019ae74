package bench

import (
	"context"
	"io"
	"log/slog"
)

// RouDiForTest starts a RouDi as the harness does (withRouDi, sockets in
// dir), calls ready once it serves, and keeps it until ctx ends.
func RouDiForTest(ctx context.Context, dir string, ready func()) error {
	h := &harness{cfg: FullConfig(), log: slog.New(slog.NewTextHandler(io.Discard, nil)), dir: dir}
	return h.withRouDi(ctx, "iox-roudi", []ioxItem{{payload: 4 * KiB, buffers: 4}}, func() {
		ready()
		<-ctx.Done()
	})
}

// RouDiPidsForTest and RouDiLeftoversForTest: running iox-roudi processes
// and the RouDi shared memory files present.
func RouDiPidsForTest() []int         { return roudiPids() }
func RouDiLeftoversForTest() []string { return roudiLeftovers() }
