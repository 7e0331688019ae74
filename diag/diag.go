// Package diag is the opt-in diagnostics endpoint of framering's long-running
// commands (-debug-addr): net/http/pprof (heap, goroutine, CPU and the other
// profiles) and expvar (memstats, cmdline) on a loopback address, so that a
// question like "why does this process grow" on a line that runs for weeks
// is answered with a heap profile:
//
//	archiver run -debug-addr localhost:6061 ...
//	go tool pprof http://localhost:6061/debug/pprof/heap
//
// It binds to loopback only: a profile exposes memory contents and a CPU
// profile costs CPU, so it is never served on a network interface; tunnel
// (ssh -L) to reach it from elsewhere. The handlers live on a private mux,
// not http.DefaultServeMux.
package diag

import (
	"context"
	"errors"
	"expvar"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// ErrNotLoopback is returned by Serve for an address that is not on a
// loopback interface.
var ErrNotLoopback = errors.New("diagnostics address must be loopback")

// Server is a running diagnostics endpoint.
type Server struct {
	srv  *http.Server
	ln   net.Listener
	done chan struct{}
}

// Serve listens on addr ("localhost:PORT", "127.0.0.1:PORT", "[::1]:PORT";
// port 0 picks one) and serves the diagnostics until Close.
func Serve(addr string, log *slog.Logger) (*Server, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("diagnostics address %q: %w", addr, err)
	}
	if host != "localhost" {
		ip := net.ParseIP(host)
		if ip == nil || !ip.IsLoopback() {
			return nil, fmt.Errorf("diagnostics address %q: %w", addr, ErrNotLoopback)
		}
	}
	network := "tcp"
	if host == "localhost" {
		network, addr = "tcp4", net.JoinHostPort("127.0.0.1", addr[len(host)+1:])
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		return nil, fmt.Errorf("diagnostics: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.Handle("/debug/vars", expvar.Handler())
	s := &Server{
		srv:  &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second},
		ln:   ln,
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && log != nil {
			log.Error("diagnostics endpoint stopped", "err", err)
		}
	}()
	if log != nil {
		log.Info("diagnostics endpoint (pprof, expvar) listening", "addr", "http://"+ln.Addr().String()+"/debug/pprof/")
	}
	return s, nil
}

// Addr is the address the endpoint listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the endpoint and waits for it. Profiles in progress are cut
// off after a second.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = s.srv.Close()
	}
	<-s.done
	return err
}
