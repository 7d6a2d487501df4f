package serve

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Run serves s on ln until ctx ends, then shuts down gracefully: new
// connections are refused, requests in flight (streams included) get up to
// shutdownTimeout to finish and are then cut off, and s is closed. It loads
// the model in the background when s has not loaded it yet, so /health
// answers "loading" meanwhile; a failed load ends Run with the error.
//
// The http.Server it uses limits headers to 64 KiB and reads (header and
// body) to a minute; a body that trickles in slower is answered 408.
func (s *Handler) Run(ctx context.Context, ln net.Listener, shutdownTimeout time.Duration) error {
	defer s.Close()
	log := s.log
	baseCtx, cancelBase := context.WithCancel(context.Background())
	defer cancelBase()
	hs := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute, // header and body; streams write as long as the request timeout allows
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return baseCtx },
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- hs.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String(), "model", s.cfg.Model, "auth", s.cfg.APIKey != "")

	loadCtx, cancelLoad := context.WithCancel(ctx)
	defer cancelLoad()
	loadErr := make(chan error, 1)
	if s.model.Load() != nil {
		loadErr <- nil
	} else {
		go func() { loadErr <- s.Load(loadCtx) }()
	}

	var failure error
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		failure = fmt.Errorf("serving: %w", err)
	case err := <-loadErr:
		if err != nil {
			failure = fmt.Errorf("loading %s: %w", s.cfg.Model, err)
			break
		}
		select {
		case <-ctx.Done():
		case err := <-serveErr:
			failure = fmt.Errorf("serving: %w", err)
		}
	}

	log.Info("shutting down", "deadline", shutdownTimeout)
	cancelLoad()
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		// The deadline passed with requests still running: end them.
		log.Warn("in-flight requests did not finish in time; closing", "err", err)
		cancelBase()
		hs.Close()
	}
	if err := s.Close(); err != nil {
		log.Warn("closing the model", "err", err)
	}
	log.Info("stopped")
	return failure
}
