// Command archiver stores every frame of a ring on disk, losslessly: each
// published frame is stored, or its loss is recorded in the archive with its
// cause. It also verifies and exports archives and measures their write
// throughput. See "archiver help"; the logic is in internal/archiver.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/framering/framering/internal/archiver"
)

func main() {
	// The first SIGINT or SIGTERM ends the run cleanly (the current frame
	// is finished, the archive fsynced and closed); a second one, once the
	// handler is stopped, kills the process the default way.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop()
	}()
	code := archiver.Command(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
