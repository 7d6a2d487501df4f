// Command serve runs one Embrace model behind an HTTP API that OpenAI clients
// and Hugging Face text-embeddings-inference clients already speak.
//
//	serve -model <folder or repo id> [-addr 127.0.0.1:8080]
//
// By what the model's folder can do it answers POST /v1/embeddings and /embed
// (sentence embeddings, batched dynamically across concurrent requests),
// /v1/completions (GPT-2, streamed with server-sent events on request),
// /classify, /ner, /qa and /fill-mask (the encoder heads), plus GET /health,
// /v1/models and /metrics (Prometheus text format). See README.md for every
// flag and its default.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr, loadModel, nil); err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		os.Exit(1)
	}
}

// options are the command line beyond Config.
type options struct {
	addr            string
	shutdownTimeout time.Duration
	logFormat       string
	logLevel        string
}

func parseFlags(args []string, stderr io.Writer) (Config, options, error) {
	cfg := DefaultConfig()
	var o options
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: serve -model <folder or repo id> [flags]\n\nServes one model over an OpenAI- and TEI-compatible HTTP API.\n\nflags:\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&cfg.ModelRef, "model", "", "model folder, or Hugging Face repo id (required)")
	fs.StringVar(&o.addr, "addr", "127.0.0.1:8080", "listen address (use 0.0.0.0:8080 to accept other hosts)")
	fs.StringVar(&cfg.APIKey, "api-key", "", "require `Authorization: Bearer <key>` on every route but /health (default $EMBRACE_API_KEY)")
	fs.Int64Var(&cfg.MaxBodyBytes, "max-body-bytes", cfg.MaxBodyBytes, "largest request body; larger is 413")
	fs.IntVar(&cfg.MaxInputs, "max-inputs", cfg.MaxInputs, "most inputs in one request; more is 413")
	fs.IntVar(&cfg.MaxInputTokens, "max-input-tokens", 0, "most tokens per input (0 = the model's maximum); longer is 413 unless the request sets truncate")
	fs.BoolVar(&cfg.Truncate, "truncate", false, "truncate long inputs when a request does not say (instead of 413)")
	fs.IntVar(&cfg.MaxBatchSize, "max-batch-size", cfg.MaxBatchSize, "most inputs in one embedding batch (1 disables dynamic batching)")
	fs.IntVar(&cfg.MaxBatchTokens, "max-batch-tokens", cfg.MaxBatchTokens, "most padded tokens (inputs x longest) in one embedding batch")
	fs.DurationVar(&cfg.BatchWait, "batch-wait", cfg.BatchWait, "how long an embedding batch waits for more inputs")
	fs.IntVar(&cfg.EmbedWorkers, "embed-workers", cfg.EmbedWorkers, "embedding batches computed at once (the kernels use every core already)")
	fs.IntVar(&cfg.MaxQueue, "max-queue", cfg.MaxQueue, "most embedding inputs waiting; beyond is 429 with Retry-After")
	fs.IntVar(&cfg.MaxConcurrent, "max-concurrent", cfg.MaxConcurrent, "completions and head requests running at once")
	fs.IntVar(&cfg.MaxWaiting, "max-waiting", cfg.MaxWaiting, "completions and head requests waiting for a turn; beyond is 429 with Retry-After")
	fs.IntVar(&cfg.MaxNewTokens, "max-new-tokens", cfg.MaxNewTokens, "largest max_tokens a completion may ask for")
	fs.DurationVar(&cfg.RequestTimeout, "request-timeout", cfg.RequestTimeout, "time limit per request, streams included (0 = none)")
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 30*time.Second, "on SIGINT/SIGTERM, how long in-flight requests get to finish")
	fs.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return cfg, o, err
	}
	if fs.NArg() > 0 {
		return cfg, o, fmt.Errorf("unexpected arguments %q (flags go before them; the model is -model)", fs.Args())
	}
	if cfg.ModelRef == "" {
		return cfg, o, errors.New("-model is required: a model folder or a Hugging Face repo id")
	}
	if cfg.APIKey == "" {
		cfg.APIKey = os.Getenv("EMBRACE_API_KEY")
	}
	switch {
	case cfg.MaxBodyBytes < 1, cfg.MaxInputs < 1, cfg.MaxBatchSize < 1, cfg.MaxBatchTokens < 1, cfg.EmbedWorkers < 1,
		cfg.MaxQueue < 1, cfg.MaxConcurrent < 1, cfg.MaxWaiting < 0, cfg.MaxNewTokens < 1, cfg.MaxInputTokens < 0,
		cfg.BatchWait < 0, cfg.RequestTimeout < 0:
		return cfg, o, errors.New("limits must be positive (-max-waiting, -max-input-tokens, -batch-wait and -request-timeout may be 0)")
	case cfg.MaxQueue < cfg.MaxInputs:
		return cfg, o, fmt.Errorf("-max-queue (%d) must be at least -max-inputs (%d), or a full request could never be queued", cfg.MaxQueue, cfg.MaxInputs)
	}
	return cfg, o, nil
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("-log-level: %w", err)
	}
	hopts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, hopts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, hopts)), nil
	}
	return nil, fmt.Errorf("-log-format must be text or json, got %q", format)
}

// run serves until ctx ends (a signal), then shuts down gracefully. ready,
// when not nil, receives the bound address once listening (for tests).
func run(ctx context.Context, args []string, stderr io.Writer, load Loader, ready func(addr string)) error {
	cfg, o, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	log, err := newLogger(stderr, o.logFormat, o.logLevel)
	if err != nil {
		return err
	}
	s := NewServer(cfg, log)
	defer s.Close()

	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", o.addr, err)
	}
	baseCtx, cancelBase := context.WithCancel(context.Background())
	defer cancelBase()
	hs := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute, // header and body; streams write as long as the request timeout allows
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return baseCtx },
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- hs.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String(), "model", cfg.ModelRef, "auth", cfg.APIKey != "")
	if ready != nil {
		ready(ln.Addr().String())
	}

	loadCtx, cancelLoad := context.WithCancel(ctx)
	defer cancelLoad()
	loadErr := make(chan error, 1)
	go func() { loadErr <- s.Load(loadCtx, load) }()

	var failure error
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		failure = fmt.Errorf("serving: %w", err)
	case err := <-loadErr:
		if err != nil {
			failure = fmt.Errorf("loading %s: %w", cfg.ModelRef, err)
			break
		}
		select {
		case <-ctx.Done():
		case err := <-serveErr:
			failure = fmt.Errorf("serving: %w", err)
		}
	}

	log.Info("shutting down", "deadline", o.shutdownTimeout)
	cancelLoad()
	sctx, cancel := context.WithTimeout(context.Background(), o.shutdownTimeout)
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
