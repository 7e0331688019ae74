// Package diag is the opt-in diagnostics endpoint of the long-running
// commands (producer, analyzer, archiver): net/http/pprof on an address
// the operator chooses (-debug-addr), localhost by default, so that a
// question like "why does this process grow" is answered with a heap
// profile instead of a guess. It serves nothing else and nothing at all
// unless asked.
package diag

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// Serve listens on addr ("localhost:6060"; a bare ":PORT" is taken as
// localhost:PORT — exposing profiles beyond the host takes an explicit
// host) and serves /debug/pprof/ until ctx ends. It returns the address it
// listens on, or an error if it cannot listen; serving errors are logged.
func Serve(ctx context.Context, addr string, log *slog.Logger) (string, error) {
	if host, port, err := net.SplitHostPort(addr); err == nil && host == "" {
		addr = net.JoinHostPort("localhost", port)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("debug endpoint: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("debug endpoint stopped", "err", err)
		}
	}()
	context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	})
	log.Info("debug endpoint (net/http/pprof)", "addr", "http://"+ln.Addr().String()+"/debug/pprof/")
	return ln.Addr().String(), nil
}
