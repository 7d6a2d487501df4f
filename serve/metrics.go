package serve

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// metrics holds the server's counters and histograms and writes them in the
// Prometheus text exposition format (version 0.0.4). It is small enough that
// a client library would add more than it saves.
type metrics struct {
	mu       sync.Mutex
	requests map[[2]string]uint64 // route, status code
	errors   map[[2]string]uint64 // route, error type
	latency  map[string]*histogram

	batchSize   *histogram // inputs per embedding batch
	batchTokens *histogram // padded tokens per embedding batch
	genRate     *histogram // tokens per second of each completion

	inflight        atomic.Int64
	embedTokens     atomic.Uint64 // input tokens embedded
	promptTokens    atomic.Uint64
	generatedTokens atomic.Uint64
	rejected        atomic.Uint64 // 429s from full queues

	// queue depths, read at scrape time
	embedQueue func() int
	genQueue   func() int
	loaded     func() bool
}

var (
	latencyBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}
	sizeBuckets    = []float64{1, 2, 4, 8, 16, 32, 64, 128, 256}
	tokenBuckets   = []float64{16, 64, 256, 1024, 4096, 16384, 65536}
	rateBuckets    = []float64{1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500}
)

func newMetrics() *metrics {
	return &metrics{
		requests:    map[[2]string]uint64{},
		errors:      map[[2]string]uint64{},
		latency:     map[string]*histogram{},
		batchSize:   newHistogram(sizeBuckets),
		batchTokens: newHistogram(tokenBuckets),
		genRate:     newHistogram(rateBuckets),
	}
}

// observeRequest records one finished request.
func (m *metrics) observeRequest(route string, status int, errType string, seconds float64) {
	code := strconv.Itoa(status)
	m.mu.Lock()
	m.requests[[2]string{route, code}]++
	// A stream that fails after its 200 still counts as an error.
	if status >= 400 || errType != "" {
		if errType == "" {
			errType = "http_" + code
		}
		m.errors[[2]string{route, errType}]++
	}
	h := m.latency[route]
	if h == nil {
		h = newHistogram(latencyBuckets)
		m.latency[route] = h
	}
	m.mu.Unlock()
	h.observe(seconds)
}

func (m *metrics) observeBatch(inputs, paddedTokens int) {
	m.batchSize.observe(float64(inputs))
	m.batchTokens.observe(float64(paddedTokens))
}

// observeGeneration records a finished completion: its tokens and its speed.
func (m *metrics) observeGeneration(res genResult, seconds float64) {
	m.observeTokens(res)
	if seconds > 0 && res.CompletionTokens > 0 {
		m.genRate.observe(float64(res.CompletionTokens) / seconds)
	}
}

// observeTokens records the tokens of a completion that did not finish (the
// client left, the timeout passed): the work was done all the same.
func (m *metrics) observeTokens(res genResult) {
	m.promptTokens.Add(uint64(res.PromptTokens))
	m.generatedTokens.Add(uint64(res.CompletionTokens))
}

// histogram is a Prometheus histogram with fixed upper bounds.
type histogram struct {
	mu     sync.Mutex
	bounds []float64
	counts []uint64 // per bucket, not cumulative; last is +Inf
	sum    float64
	n      uint64
}

func newHistogram(bounds []float64) *histogram {
	return &histogram{bounds: bounds, counts: make([]uint64, len(bounds)+1)}
}

func (h *histogram) observe(v float64) {
	i := sort.SearchFloat64s(h.bounds, v) // first bound >= v: "le" semantics
	h.mu.Lock()
	h.counts[i]++
	h.sum += v
	h.n++
	h.mu.Unlock()
}

func (h *histogram) write(w io.Writer, name, labels string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	sep := ""
	if labels != "" {
		sep = ","
	}
	var cum uint64
	for i, b := range h.bounds {
		cum += h.counts[i]
		fmt.Fprintf(w, "%s_bucket{%s%sle=\"%s\"} %d\n", name, labels, sep, formatFloat(b), cum)
	}
	cum += h.counts[len(h.bounds)]
	fmt.Fprintf(w, "%s_bucket{%s%sle=\"+Inf\"} %d\n", name, labels, sep, cum)
	if labels != "" {
		labels = "{" + labels + "}"
	}
	fmt.Fprintf(w, "%s_sum%s %s\n", name, labels, formatFloat(h.sum))
	fmt.Fprintf(w, "%s_count%s %d\n", name, labels, h.n)
}

func formatFloat(v float64) string {
	if math.IsInf(v, 1) {
		return "+Inf"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// escapeLabel escapes a label value as the text format requires.
func escapeLabel(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
}

func header(w io.Writer, name, typ, help string) {
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
}

// ServeHTTP writes the exposition.
func (m *metrics) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	var b strings.Builder
	m.write(&b)
	io.WriteString(w, b.String())
}

func (m *metrics) write(w io.Writer) {
	m.mu.Lock()
	reqKeys := sortedKeys(m.requests)
	reqs := make([]uint64, len(reqKeys))
	for i, k := range reqKeys {
		reqs[i] = m.requests[k]
	}
	errKeys := sortedKeys(m.errors)
	errs := make([]uint64, len(errKeys))
	for i, k := range errKeys {
		errs[i] = m.errors[k]
	}
	routes := make([]string, 0, len(m.latency))
	for r := range m.latency {
		routes = append(routes, r)
	}
	sort.Strings(routes)
	hists := make([]*histogram, len(routes))
	for i, r := range routes {
		hists[i] = m.latency[r]
	}
	m.mu.Unlock()

	header(w, "embrace_requests_total", "counter", "HTTP requests answered, by route and status code.")
	for i, k := range reqKeys {
		fmt.Fprintf(w, "embrace_requests_total{route=\"%s\",code=\"%s\"} %d\n", escapeLabel(k[0]), k[1], reqs[i])
	}
	header(w, "embrace_errors_total", "counter", "Requests answered with an error status, by route and error type.")
	for i, k := range errKeys {
		fmt.Fprintf(w, "embrace_errors_total{route=\"%s\",type=\"%s\"} %d\n", escapeLabel(k[0]), escapeLabel(k[1]), errs[i])
	}
	header(w, "embrace_request_duration_seconds", "histogram", "Time from request to the end of the answer, by route.")
	for i, r := range routes {
		hists[i].write(w, "embrace_request_duration_seconds", "route=\""+escapeLabel(r)+"\"")
	}
	header(w, "embrace_requests_in_flight", "gauge", "Requests being handled now.")
	fmt.Fprintf(w, "embrace_requests_in_flight %d\n", m.inflight.Load())
	header(w, "embrace_rejected_total", "counter", "Requests refused with 429 because a queue was full.")
	fmt.Fprintf(w, "embrace_rejected_total %d\n", m.rejected.Load())

	header(w, "embrace_queue_depth", "gauge", "Work waiting for the model: embedding inputs, and completion or head requests.")
	eq, gq := 0, 0
	if m.embedQueue != nil {
		eq = m.embedQueue()
	}
	if m.genQueue != nil {
		gq = m.genQueue()
	}
	fmt.Fprintf(w, "embrace_queue_depth{queue=\"embed\"} %d\n", eq)
	fmt.Fprintf(w, "embrace_queue_depth{queue=\"model\"} %d\n", gq)

	header(w, "embrace_batch_size", "histogram", "Inputs per dynamic embedding batch.")
	m.batchSize.write(w, "embrace_batch_size", "")
	header(w, "embrace_batch_tokens", "histogram", "Padded tokens (inputs x longest) per dynamic embedding batch.")
	m.batchTokens.write(w, "embrace_batch_tokens", "")

	header(w, "embrace_embedded_tokens_total", "counter", "Input tokens embedded.")
	fmt.Fprintf(w, "embrace_embedded_tokens_total %d\n", m.embedTokens.Load())
	header(w, "embrace_prompt_tokens_total", "counter", "Prompt tokens of completions.")
	fmt.Fprintf(w, "embrace_prompt_tokens_total %d\n", m.promptTokens.Load())
	header(w, "embrace_generated_tokens_total", "counter", "Tokens generated by completions.")
	fmt.Fprintf(w, "embrace_generated_tokens_total %d\n", m.generatedTokens.Load())
	header(w, "embrace_generation_tokens_per_second", "histogram", "Generation speed of each completion (completion tokens / its duration).")
	m.genRate.write(w, "embrace_generation_tokens_per_second", "")

	header(w, "embrace_model_loaded", "gauge", "1 once the model is loaded and the server is ready.")
	loaded := 0
	if m.loaded != nil && m.loaded() {
		loaded = 1
	}
	fmt.Fprintf(w, "embrace_model_loaded %d\n", loaded)
}

func sortedKeys(m map[[2]string]uint64) [][2]string {
	keys := make([][2]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i][0] != keys[j][0] {
			return keys[i][0] < keys[j][0]
		}
		return keys[i][1] < keys[j][1]
	})
	return keys
}
