package serve

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/embrace-go/embrace/models/arch"
)

// Options configures a Handler. The zero value of every field but Model
// means its default (DefaultOptions lists them); MaxWaiting, BatchWait and
// RequestTimeout take a negative value for "none".
type Options struct {
	// Model is the model to serve: a local folder or a Hugging Face Hub repo
	// id ("org/name", optionally "@revision"), downloaded into the Hugging
	// Face cache by package hub. It also names the model in /v1/models and
	// in responses.
	Model string
	// APIKey, when set, is required as "Authorization: Bearer <key>" on
	// every route but /health.
	APIKey string
	// MaxBodyBytes bounds a request body; a larger one is answered 413.
	MaxBodyBytes int64
	// MaxInputs bounds the inputs of one request; more is 413.
	MaxInputs int
	// MaxInputTokens lowers the model's limit on tokens per input (0 keeps
	// the model's own: its positions, and the tokenizer's
	// model_max_length). A longer input is 413 unless truncation applies.
	MaxInputTokens int
	// Truncate is the default for requests that do not say: cut long inputs
	// at the limit instead of answering 413.
	Truncate bool
	// MaxBatchSize is how many embedding inputs one dynamic batch gathers (1
	// disables batching); MaxBatchTokens bounds a batch's padded tokens
	// (inputs × longest); BatchWait is how long a batch waits for more
	// inputs; EmbedWorkers is how many batches are computed at once.
	MaxBatchSize   int
	MaxBatchTokens int
	BatchWait      time.Duration
	EmbedWorkers   int
	// MaxQueue bounds the embedding inputs waiting for a batch; beyond it a
	// request is answered 429 with Retry-After.
	MaxQueue int
	// MaxConcurrent is how many completions and head requests (classify,
	// ner, qa, fill-mask) run at once; MaxWaiting how many may wait for a
	// turn (429 beyond).
	MaxConcurrent int
	MaxWaiting    int
	// MaxNewTokens is the largest max_tokens a completion may ask for.
	MaxNewTokens int
	// RequestTimeout limits each request, streams included.
	RequestTimeout time.Duration
	// Load chooses how the weights are loaded: arch.LoadOptions{Quantize:
	// arch.QuantizeQ8} stores the Linear weights as 8-bit blocks (a quarter
	// of F32's memory and bandwidth), Compute: arch.ComputeBF16 multiplies
	// in bfloat16. The zero value keeps the checkpoint's precision.
	Load arch.LoadOptions
	// Logger receives one line per request (never bodies) and the server's
	// events; nil means slog.Default().
	Logger *slog.Logger

	// load replaces the library's loader (tests serve fakes through it).
	load loader
}

// DefaultOptions returns the defaults that zero fields of Options take.
func DefaultOptions() Options {
	return Options{
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

// withDefaults fills zero fields and turns the negative "none" values into
// the 0 the server code reads as none.
func (o Options) withDefaults() Options {
	d := DefaultOptions()
	set := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = d.MaxBodyBytes
	}
	set(&o.MaxInputs, d.MaxInputs)
	set(&o.MaxBatchSize, d.MaxBatchSize)
	set(&o.MaxBatchTokens, d.MaxBatchTokens)
	set(&o.EmbedWorkers, d.EmbedWorkers)
	set(&o.MaxQueue, d.MaxQueue)
	set(&o.MaxConcurrent, d.MaxConcurrent)
	set(&o.MaxWaiting, d.MaxWaiting)
	set(&o.MaxNewTokens, d.MaxNewTokens)
	if o.BatchWait == 0 {
		o.BatchWait = d.BatchWait
	}
	if o.RequestTimeout == 0 {
		o.RequestTimeout = d.RequestTimeout
	}
	o.MaxWaiting = max(o.MaxWaiting, 0)
	o.BatchWait = max(o.BatchWait, 0)
	o.RequestTimeout = max(o.RequestTimeout, 0)
	return o
}

// check refuses settings that cannot work, naming the field.
func (o Options) check() error {
	switch {
	case o.Model == "":
		return errors.New("serve: Options.Model is empty: give a model folder or a Hugging Face repo id")
	case o.MaxBodyBytes < 1, o.MaxInputs < 1, o.MaxBatchSize < 1, o.MaxBatchTokens < 1, o.EmbedWorkers < 1,
		o.MaxQueue < 1, o.MaxConcurrent < 1, o.MaxNewTokens < 1, o.MaxInputTokens < 0:
		return errors.New("serve: the limits in Options must be positive (MaxInputTokens may be 0)")
	case o.Load.Validate() != nil:
		return fmt.Errorf("serve: Options.Load: %w", o.Load.Validate())
	case o.MaxQueue < o.MaxInputs:
		return fmt.Errorf("serve: MaxQueue (%d) must be at least MaxInputs (%d), or a full request could never be queued", o.MaxQueue, o.MaxInputs)
	}
	return nil
}

// loader loads the model named by ref.
type loader func(ctx context.Context, ref string, opt loadOptions) (*backend, error)

// Handler serves one model over HTTP: the OpenAI routes (/v1/embeddings,
// /v1/completions, /v1/chat/completions, /v1/models), the text-embeddings-
// inference and Inference API routes (/embed, /rerank, /classify, /ner,
// /qa, /fill-mask), GET /health and GET /metrics (Prometheus text format). Which
// model routes answer depends on what the model's folder serves
// (pipeline.FolderTasks); the others answer 404 saying so.
//
// A Handler is an http.Handler: mount it at "/" of a mux, or under a prefix
// with http.StripPrefix. It is safe for concurrent use. Give the
// http.Server a ReadHeaderTimeout and a ReadTimeout (Run does): a body
// still incomplete at the read deadline is answered 408.
type Handler struct {
	cfg     Options
	log     *slog.Logger
	metrics *metrics
	keyHash [32]byte
	load    loader

	model   atomic.Pointer[backend]
	batch   atomic.Pointer[batcher]
	gate    *gate
	loadErr atomic.Pointer[error]
	created int64

	mu        sync.Mutex // guards closed against a Load that finishes late
	closed    bool
	closeOnce sync.Once
	closeErr  error
	handler   http.Handler
}

// New loads opt.Model and returns a Handler serving it. ctx bounds the
// loading (and a Hub download) only.
func New(ctx context.Context, opt Options) (*Handler, error) {
	h, err := NewHandler(opt)
	if err != nil {
		return nil, err
	}
	if err := h.Load(ctx); err != nil {
		h.Close()
		return nil, err
	}
	return h, nil
}

// NewHandler returns a Handler that has not loaded its model yet: /health
// answers 503 "loading" and the model routes 503 with Retry-After until Load
// returns, so a server can listen (and be probed) while a large model loads.
func NewHandler(opt Options) (*Handler, error) {
	opt = opt.withDefaults()
	if err := opt.check(); err != nil {
		return nil, err
	}
	return newHandler(opt, opt.Logger), nil
}

// newHandler returns a server with nothing loaded.
func newHandler(cfg Options, log *slog.Logger) *Handler {
	if log == nil {
		log = slog.Default()
	}
	s := &Handler{cfg: cfg, log: log, metrics: newMetrics(), created: time.Now().Unix(), load: cfg.load}
	if s.load == nil {
		s.load = loadModel
	}
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

// Load loads the model (resolving a Hub repo id into the Hugging Face
// cache) and makes the Handler ready. It returns the loading error, which
// /health then reports as 503 "model failed to load". A Handler loads its
// model once; New has already called Load.
func (s *Handler) Load(ctx context.Context) error { return s.loadWith(ctx, s.load) }

func (s *Handler) loadWith(ctx context.Context, load loader) error {
	if s.model.Load() != nil {
		return errors.New("serve: the model is already loaded")
	}
	start := time.Now()
	m, err := load(ctx, s.cfg.Model, loadOptions{MaxInputTokens: s.cfg.MaxInputTokens, BatchSize: s.cfg.MaxBatchSize, Load: s.cfg.Load})
	if err != nil {
		s.loadErr.Store(&err)
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.model.Load() != nil {
		// Closed while loading, or loaded by a concurrent Load: nobody
		// will serve or close this model.
		if m.Close != nil {
			m.Close()
		}
		if !s.closed {
			return errors.New("serve: the model is already loaded")
		}
		err := errors.New("serve: the handler was closed while the model loaded")
		s.loadErr.Store(&err)
		return err
	}
	s.setModel(m)
	s.log.Info("model loaded", "model", m.ID, "capabilities", strings.Join(m.capabilities(), ","),
		"seconds", time.Since(start).Seconds())
	return nil
}

func (s *Handler) setModel(m *backend) {
	if m.ID == "" {
		m.ID = s.cfg.Model
	}
	if m.Embedder != nil {
		s.batch.Store(newBatcher(m.Embedder, s.cfg, s.metrics, s.log))
	}
	s.model.Store(m)
}

// Close stops the embedding batcher and releases the model. Call it after
// the http.Server has shut down (requests still running get errors).
func (s *Handler) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		if b := s.batch.Load(); b != nil {
			b.close()
		}
		if m := s.model.Load(); m != nil && m.Close != nil {
			s.closeErr = m.Close()
		}
	})
	return s.closeErr
}

// ServeHTTP answers one request.
func (s *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

func (s *Handler) routes() http.Handler {
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
	handle("POST", "/rerank", s.handleRerank)
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
func (s *Handler) wrap(route string, h func(http.ResponseWriter, *http.Request) error) http.Handler {
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
func (s *Handler) authorized(r *http.Request) bool {
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
func (s *Handler) ready() (*backend, error) {
	if m := s.model.Load(); m != nil {
		return m, nil
	}
	if e := s.loadErr.Load(); e != nil {
		return nil, newError(http.StatusServiceUnavailable, typeServer, "load_failed", "model failed to load")
	}
	return nil, &apiError{Status: http.StatusServiceUnavailable, Type: typeOverload, Code: "loading",
		Message: "model is loading", RetryAfter: 5}
}

func (s *Handler) handleHealth(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.ready(); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

func (s *Handler) handleMetrics(w http.ResponseWriter, r *http.Request) error {
	s.metrics.ServeHTTP(w, r)
	return nil
}

func (s *Handler) handleModels(w http.ResponseWriter, r *http.Request) error {
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
func notServed(m *backend, what string) error {
	return newError(http.StatusNotFound, typeNotFound, "not_supported_by_model",
		"model %q does not support %s (it serves: %s)", m.ID, what, strings.Join(m.capabilities(), ", "))
}
