package diag

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// ServeMetrics listens on addr (as Serve: a bare ":PORT" is
// localhost:PORT) and serves the collectors at /metrics, in the
// Prometheus text format, with the Go runtime's and the process's own
// metrics beside them, until ctx ends. It returns the address it listens
// on, or an error if it cannot listen (or a collector is refused);
// serving errors are logged. The analyzer's and archiver's -metrics flag.
func ServeMetrics(ctx context.Context, addr string, log *slog.Logger, cs ...prometheus.Collector) (string, error) {
	if host, port, err := net.SplitHostPort(addr); err == nil && host == "" {
		addr = net.JoinHostPort("localhost", port)
	}
	reg := prometheus.NewRegistry()
	cs = append(cs, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return "", fmt.Errorf("metrics endpoint: %w", err)
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("metrics endpoint: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("metrics endpoint stopped", "err", err)
		}
	}()
	context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	})
	log.Info("metrics endpoint (Prometheus)", "addr", "http://"+ln.Addr().String()+"/metrics")
	return ln.Addr().String(), nil
}
