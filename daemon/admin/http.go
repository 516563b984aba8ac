package admin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/rmt-project/rmt/daemon/status"
)

// HTTPOptions configures the HTTP endpoint.
type HTTPOptions struct {
	Addr     string                  // e.g. "127.0.0.1:9121"; port 0 picks a free one
	Snapshot func() *status.Snapshot // what /metrics and /readyz render
	Logger   *zap.Logger
}

// HTTP serves /metrics (Prometheus's text format), /healthz (alive) and /readyz (every source
// node in its stream phase and within status.ReadyMaxLag), for scrapers and Kubernetes probes.
type HTTP struct {
	opts HTTPOptions
	log  *zap.Logger
	srv  *http.Server

	mu   sync.Mutex
	ln   net.Listener
	done chan struct{}
}

// NewHTTP returns the endpoint; Start binds it.
func NewHTTP(o HTTPOptions) *HTTP {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	h := &HTTP{opts: o, log: o.Logger}
	reg := prometheus.NewRegistry()
	reg.MustRegister(status.NewMetrics(o.Snapshot),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: zap.NewStdLog(h.log)}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		ok, why := status.Ready(o.Snapshot())
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprintln(w, why)
	})
	h.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
	return h
}

// Start binds the address and serves in the background.
func (h *HTTP) Start() error {
	ln, err := net.Listen("tcp", h.opts.Addr)
	if err != nil {
		return fmt.Errorf("admin: metrics listen on %q: %w", h.opts.Addr, err)
	}
	h.mu.Lock()
	h.ln, h.done = ln, make(chan struct{})
	done := h.done
	h.mu.Unlock()
	go func() {
		defer close(done)
		if err := h.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			h.log.Error("metrics endpoint stopped", zap.Error(err))
		}
	}()
	h.log.Info("metrics endpoint listening", zap.String("addr", ln.Addr().String()))
	return nil
}

// Addr is the bound address, "" before Start.
func (h *HTTP) Addr() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ln == nil {
		return ""
	}
	return h.ln.Addr().String()
}

// Close stops serving, waiting up to 5 s for requests in progress.
func (h *HTTP) Close() error {
	h.mu.Lock()
	done := h.done
	h.mu.Unlock()
	if done == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := h.srv.Shutdown(ctx)
	<-done
	return err
}
