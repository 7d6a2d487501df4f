package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config holds the server's settings; every field has a flag (see main.go)
// and the defaults below are documented in README.md.
type Config struct {
	ModelRef       string        // folder or repo id, also the model's name
	APIKey         string        // bearer key; empty = no authentication
	MaxBodyBytes   int64         // request body limit (413 beyond)
	MaxInputs      int           // inputs per request
	MaxInputTokens int           // tokens per input; 0 = the model's maximum
	Truncate       bool          // default for requests that do not say: truncate long inputs instead of 413
	MaxBatchSize   int           // inputs per embedding batch; 1 disables batching
	MaxBatchTokens int           // padded tokens per embedding batch
	BatchWait      time.Duration // how long a batch waits for more inputs
	EmbedWorkers   int           // batches computed at once
	MaxQueue       int           // embedding inputs waiting; 429 beyond
	MaxConcurrent  int           // completions / head requests running at once
	MaxWaiting     int           // completions / head requests waiting for a turn; 429 beyond
	MaxNewTokens   int           // largest max_tokens a completion may ask for
	RequestTimeout time.Duration // per request, streaming included
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		MaxBodyBytes:   2 << 20,
		MaxInputs:      256,
		MaxBatchSize:   64,
		MaxBatchTokens: 16384,
		BatchWait:      2 * time.Millisecond,
		EmbedWorkers:   1,
		MaxQueue:       4096,
		MaxConcurrent:  8,
		MaxWaiting:     256,
		MaxNewTokens:   4096,
		RequestTimeout: 2 * time.Minute,
	}
}

// Loader loads the model named by ref.
type Loader func(ctx context.Context, ref string, opt LoadOptions) (*Model, error)

// Server answers the HTTP API for one model. It listens before the model is
// loaded so that /health can say "loading"; model endpoints answer 503 until
// Load finishes.
type Server struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	keyHash [32]byte

	model   atomic.Pointer[Model]
	batch   atomic.Pointer[batcher]
	gate    *gate
	loadErr atomic.Pointer[error]
	created int64

	closeOnce sync.Once
	handler   http.Handler
}

// NewServer returns a server with nothing loaded.
func NewServer(cfg Config, log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	s := &Server{cfg: cfg, log: log, metrics: newMetrics(), created: time.Now().Unix()}
	if cfg.APIKey != "" {
		s.keyHash = sha256.Sum256([]byte(cfg.APIKey))
	}
	s.gate = newGate(cfg.MaxConcurrent, cfg.MaxWaiting)
	s.metrics.genQueue = s.gate.depth
	s.metrics.embedQueue = func() int {
		if b := s.batch.Load(); b != nil {
			return b.depth()
		}
		return 0
	}
	s.metrics.loaded = func() bool { return s.model.Load() != nil }
	s.handler = s.routes()
	return s
}

// Load loads the model and makes the server ready.
func (s *Server) Load(ctx context.Context, load Loader) error {
	start := time.Now()
	m, err := load(ctx, s.cfg.ModelRef, LoadOptions{MaxInputTokens: s.cfg.MaxInputTokens, BatchSize: s.cfg.MaxBatchSize})
	if err != nil {
		s.loadErr.Store(&err)
		return err
	}
	s.setModel(m)
	s.log.Info("model loaded", "model", m.ID, "capabilities", strings.Join(m.capabilities(), ","),
		"seconds", time.Since(start).Seconds())
	return nil
}

func (s *Server) setModel(m *Model) {
	if m.ID == "" {
		m.ID = s.cfg.ModelRef
	}
	if m.Embedder != nil {
		s.batch.Store(newBatcher(m.Embedder, s.cfg, s.metrics, s.log))
	}
	s.model.Store(m)
}

// Close stops the batcher and releases the model. Call it after the HTTP
// server has shut down.
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() {
		if b := s.batch.Load(); b != nil {
			b.close()
		}
		if m := s.model.Load(); m != nil && m.Close != nil {
			err = m.Close()
		}
	})
	return err
}

// Handler is the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	handle := func(method, path string, h func(http.ResponseWriter, *http.Request) error) {
		mux.Handle(method+" "+path, s.wrap(path, h))
		// Other methods get a JSON 405 instead of the mux's plain-text one.
		mux.Handle(path, s.wrap(path, func(w http.ResponseWriter, r *http.Request) error {
			w.Header().Set("Allow", method)
			return newError(http.StatusMethodNotAllowed, typeInvalid, "method_not_allowed",
				"%s %s is not supported; use %s", r.Method, path, method)
		}))
	}
	handle("GET", "/health", s.handleHealth)
	handle("GET", "/metrics", s.handleMetrics)
	handle("GET", "/v1/models", s.handleModels)
	handle("POST", "/v1/embeddings", s.handleEmbeddings)
	handle("POST", "/v1/completions", s.handleCompletions)
	handle("POST", "/v1/chat/completions", s.handleChat)
	handle("POST", "/embed", s.handleEmbed)
	handle("POST", "/classify", s.handleClassify)
	handle("POST", "/ner", s.handleNER)
	handle("POST", "/qa", s.handleQA)
	handle("POST", "/fill-mask", s.handleFillMask)
	mux.Handle("/", s.wrap("other", func(w http.ResponseWriter, r *http.Request) error {
		return newError(http.StatusNotFound, typeNotFound, "not_found", "no route for %s %s", r.Method, r.URL.Path)
	}))
	return mux
}

type ctxKey int

const keyRequestID ctxKey = 0

func requestID(ctx context.Context) string {
	id, _ := ctx.Value(keyRequestID).(string)
	return id
}

func newRequestID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// recorder remembers what a handler answered, for logs and metrics, and
// unwraps so that http.ResponseController can flush streams.
type recorder struct {
	http.ResponseWriter
	status  int
	bytes   int64
	errType string
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// wrap applies what every route shares: request id, auth, the body limit, the
// timeout, panic recovery, metrics and one log line without bodies.
func (s *Server) wrap(route string, h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		s.metrics.inflight.Add(1)
		defer s.metrics.inflight.Add(-1)
		id := newRequestID()
		rec := &recorder{ResponseWriter: w}
		rec.Header().Set("X-Request-Id", id)
		ctx := context.WithValue(r.Context(), keyRequestID, id)
		var cancel context.CancelFunc
		if s.cfg.RequestTimeout > 0 && route != "/health" && route != "/metrics" {
			ctx, cancel = context.WithTimeout(ctx, s.cfg.RequestTimeout)
			defer cancel()
		}
		r = r.WithContext(ctx)
		if s.cfg.MaxBodyBytes > 0 {
			r.Body = http.MaxBytesReader(rec, r.Body, s.cfg.MaxBodyBytes)
		}

		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.log.Error("panic in handler", "route", route, "request_id", id,
					"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				if rec.status == 0 {
					s.writeError(rec, r, newError(http.StatusInternalServerError, typeServer, "panic",
						"internal error (request id %s)", id))
				}
				rec.errType = "panic"
			}
			status := rec.status
			if status == 0 {
				status = http.StatusOK
			}
			dur := time.Since(start)
			s.metrics.observeRequest(route, status, rec.errType, dur.Seconds())
			lvl := slog.LevelInfo
			if status >= 500 && status != 503 {
				lvl = slog.LevelWarn
			}
			s.log.LogAttrs(ctx, lvl, "request",
				slog.String("request_id", id), slog.String("method", r.Method), slog.String("path", r.URL.Path),
				slog.Int("status", status), slog.Float64("ms", float64(dur.Microseconds())/1000),
				slog.Int64("bytes_out", rec.bytes), slog.String("remote", r.RemoteAddr))
		}()

		if route != "/health" && !s.authorized(r) {
			s.writeError(rec, r, &apiError{Status: http.StatusUnauthorized, Type: typeAuth, Code: "invalid_api_key",
				Message: "missing or wrong API key: send the header Authorization: Bearer <key>"})
			return
		}
		if err := h(rec, r); err != nil {
			if rec.status != 0 {
				// A streaming answer already started; it reports its own errors.
				return
			}
			s.writeError(rec, r, err)
		}
	})
}

// authorized compares the bearer key in constant time (hashes first, so the
// key's length does not leak either).
func (s *Server) authorized(r *http.Request) bool {
	if s.cfg.APIKey == "" {
		return true
	}
	auth := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok {
		tok, ok = strings.CutPrefix(auth, "bearer ")
	}
	if !ok {
		return false
	}
	h := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	return subtle.ConstantTimeCompare(h[:], s.keyHash[:]) == 1
}

// ready returns the model, or a 503 while it loads or when loading failed.
func (s *Server) ready() (*Model, error) {
	if m := s.model.Load(); m != nil {
		return m, nil
	}
	if e := s.loadErr.Load(); e != nil {
		return nil, newError(http.StatusServiceUnavailable, typeServer, "load_failed", "model failed to load")
	}
	return nil, &apiError{Status: http.StatusServiceUnavailable, Type: typeOverload, Code: "loading",
		Message: "model is loading", RetryAfter: 5}
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.ready(); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request) error {
	s.metrics.ServeHTTP(w, r)
	return nil
}

func (s *Server) handleModels(w http.ResponseWriter, r *http.Request) error {
	m, err := s.ready()
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"object": "list",
		"data": []map[string]any{{
			"id": m.ID, "object": "model", "created": s.created, "owned_by": "embrace",
			"capabilities": m.capabilities(),
		}},
	})
	return nil
}

// notServed answers an endpoint the loaded model cannot do.
func notServed(m *Model, what string) error {
	return newError(http.StatusNotFound, typeNotFound, "not_supported_by_model",
		"model %q does not support %s (it serves: %s)", m.ID, what, strings.Join(m.capabilities(), ", "))
}
