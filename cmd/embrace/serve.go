package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/embrace-go/embrace/internal/cli"
	"github.com/embrace-go/embrace/models/arch"
	"github.com/embrace-go/embrace/serve"
)

var serveCommand = &cli.Command{
	Name:     "embrace serve",
	Summary:  "serve one model over an OpenAI- and TEI-compatible HTTP API",
	Synopsis: "(-model is required)",
	Details: `By what the model's folder serves it answers POST /v1/embeddings and /embed
(sentence embeddings, batched dynamically across concurrent requests),
/v1/completions and /v1/chat/completions (text generation, streamed with
server-sent events on request),
/rerank (cross-encoders), /classify, /ner, /qa and /fill-mask (the encoder
heads), plus GET /health,
/v1/models and /metrics (Prometheus text format). Routes the model does not
serve answer 404 saying so.

It listens at once; /health answers 503 "loading" until the model is loaded.
SIGINT or SIGTERM shut it down gracefully. Logs (one line per request, never
bodies) go to stderr. See cmd/embrace/README.md.`,
}

// serveFlags are the command line: the library's options plus what only a
// process has (address, shutdown, logging).
type serveFlags struct {
	opt             serve.Options
	addr            string
	shutdownTimeout time.Duration
	logFormat       string
	logLevel        string
}

func parseServeFlags(args []string, stdout, stderr io.Writer) (f serveFlags, ok bool, code int) {
	f.opt = serve.DefaultOptions()
	o := &f.opt
	fs := serveCommand.NewFlagSet()
	fs.StringVar(&o.Model, "model", "", "model `folder`, or Hugging Face repo id org/name (required)")
	fs.StringVar(&f.addr, "addr", "127.0.0.1:8080", "listen address (use 0.0.0.0:8080 to accept other hosts)")
	fs.StringVar(&o.APIKey, "api-key", "", "require the header Authorization: Bearer `key` on every route but /health (default $EMBRACE_API_KEY)")
	fs.Int64Var(&o.MaxBodyBytes, "max-body-bytes", o.MaxBodyBytes, "largest request body; larger is 413")
	fs.IntVar(&o.MaxInputs, "max-inputs", o.MaxInputs, "most inputs in one request; more is 413")
	fs.IntVar(&o.MaxInputTokens, "max-input-tokens", 0, "most tokens per input (0 = the model's maximum); longer is 413 unless the request sets truncate")
	fs.BoolVar(&o.Truncate, "truncate", false, "truncate long inputs when a request does not say (instead of 413)")
	fs.IntVar(&o.MaxBatchSize, "max-batch-size", o.MaxBatchSize, "most inputs in one embedding batch (1 disables dynamic batching)")
	fs.IntVar(&o.MaxBatchTokens, "max-batch-tokens", o.MaxBatchTokens, "most padded tokens (inputs x longest) in one embedding batch")
	fs.DurationVar(&o.BatchWait, "batch-wait", o.BatchWait, "how long an embedding batch waits for more inputs")
	fs.IntVar(&o.EmbedWorkers, "embed-workers", o.EmbedWorkers, "embedding batches computed at once (the kernels use every core already)")
	fs.IntVar(&o.MaxQueue, "max-queue", o.MaxQueue, "most embedding inputs waiting; beyond is 429 with Retry-After")
	fs.IntVar(&o.MaxConcurrent, "max-concurrent", o.MaxConcurrent, "completions and head requests running at once")
	fs.IntVar(&o.MaxWaiting, "max-waiting", o.MaxWaiting, "completions and head requests waiting for a turn; beyond is 429 with Retry-After")
	fs.IntVar(&o.MaxNewTokens, "max-new-tokens", o.MaxNewTokens, "largest max_tokens a completion may ask for")
	fs.DurationVar(&o.RequestTimeout, "request-timeout", o.RequestTimeout, "time limit per request, streams included (0 = none)")
	quantize := fs.String("quantize", "", "store the Linear weights reduced: q8 (8-bit blocks; a quarter of F32's memory and bandwidth), or \"\" for the checkpoint's precision")
	compute := fs.String("compute", "", "arithmetic of the products: bf16 (where the CPU has AVX512_BF16), or \"\" for float32")
	fs.BoolVar(&o.Load.KeepHead, "keep-head", false, "with -quantize, keep the LM head in full precision")
	fs.IntVar(&o.Load.Threads, "threads", 0, "threads one model call runs on (0 = every processor, GOMAXPROCS); concurrent requests each get their own")
	fs.DurationVar(&f.shutdownTimeout, "shutdown-timeout", 30*time.Second, "on SIGINT/SIGTERM, how long in-flight requests get to finish")
	fs.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	if ok, code := serveCommand.Parse(fs, args, stdout, stderr); !ok {
		return f, false, code
	}
	fail := func(err error) (serveFlags, bool, int) {
		fmt.Fprintf(stderr, "embrace serve: %v (run embrace serve -h for help)\n", err)
		return f, false, cli.ExitUsage
	}
	if fs.NArg() > 0 {
		return fail(fmt.Errorf("unexpected arguments %q (flags go before them; the model is -model)", fs.Args()))
	}
	if o.Model == "" {
		return fail(errors.New("-model is required: a model folder or a Hugging Face repo id"))
	}
	if o.APIKey == "" {
		o.APIKey = os.Getenv("EMBRACE_API_KEY")
	}
	o.Load.Quantize, o.Load.Compute = arch.Quantization(*quantize), arch.Compute(*compute)
	if err := o.Load.Validate(); err != nil {
		return fail(fmt.Errorf("-quantize / -compute / -threads: %w", err))
	}
	switch {
	case o.MaxBodyBytes < 1, o.MaxInputs < 1, o.MaxBatchSize < 1, o.MaxBatchTokens < 1, o.EmbedWorkers < 1,
		o.MaxQueue < 1, o.MaxConcurrent < 1, o.MaxWaiting < 0, o.MaxNewTokens < 1, o.MaxInputTokens < 0,
		o.BatchWait < 0, o.RequestTimeout < 0, f.shutdownTimeout < 0:
		return fail(errors.New("limits must be positive (-max-waiting, -max-input-tokens, -batch-wait and -request-timeout may be 0)"))
	case o.MaxQueue < o.MaxInputs:
		return fail(fmt.Errorf("-max-queue (%d) must be at least -max-inputs (%d), or a full request could never be queued", o.MaxQueue, o.MaxInputs))
	}
	// A flag's 0 means none; serve.Options reads 0 as "the default" and a
	// negative value as none.
	if o.MaxWaiting == 0 {
		o.MaxWaiting = -1
	}
	if o.BatchWait == 0 {
		o.BatchWait = -1
	}
	if o.RequestTimeout == 0 {
		o.RequestTimeout = -1
	}
	return f, true, cli.ExitOK
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

// runServe listens, loads the model in the background and serves until ctx
// ends (SIGINT or SIGTERM), then shuts down gracefully.
func runServe(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	f, ok, code := parseServeFlags(args, stdout, stderr)
	if !ok {
		return code
	}
	log, err := newLogger(stderr, f.logFormat, f.logLevel)
	if err != nil {
		return serveCommand.Fail(stderr, err)
	}
	f.opt.Logger = log
	h, err := serve.NewHandler(f.opt)
	if err != nil {
		return serveCommand.Fail(stderr, err)
	}
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		h.Close()
		return serveCommand.Fail(stderr, fmt.Errorf("listening on %s: %w", f.addr, err))
	}
	if err := h.Run(ctx, ln, f.shutdownTimeout); err != nil {
		return serveCommand.Fail(stderr, err)
	}
	return cli.ExitOK
}
