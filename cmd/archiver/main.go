// Command archiver stores every frame of a ring on disk, losslessly: each
// published frame is stored, or its loss is recorded in the archive, as a gap
// record, with its cause. It attaches as a Lossless consumer and writes each
// frame with one pwrite(2) straight from the ring's shared memory.
//
//	archiver [run] -ring cam0 -dir /data/cam0 [-fsync interval=100ms] [-segment-size 1GiB]
//	               [-compress] [-copy] [-reattach=true] [-wait=true] [-duration D] [-frames N]
//	               [-log-format text|json] [-stats-interval 10s] [-metrics localhost:9466]
//	archiver verify -dir /data/cam0 [-json] [-pattern]
//	archiver export -dir /data/cam0 -from 100 -to 200 -format png|tiff -out /tmp/frames
//	archiver bench -dir /data [-frames 256 -width 1920 -height 1080 -format Mono8 -rounds 5]
//
// SIGINT or SIGTERM ends a run cleanly: the current frame is finished, the
// losses found are recorded, the archive is fsynced and closed, and a summary
// is logged. After kill -9, the next run recovers the archive (the torn tail
// is cut) and records the frames published meanwhile as lost. Exit status
// (package internal/cli): 0, 1 for a failed run (or losses the full disk
// kept out of the archive), 2 for a usage error, 3 for a damaged archive
// (verify). The logic, and what each loss cause means, is in
// cmd/archiver/internal/archiver.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/framering/framering/cmd/archiver/internal/archiver"
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
