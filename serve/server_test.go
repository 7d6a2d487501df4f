package serve

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// testServer serves m over real HTTP on loopback.
type testServer struct {
	*httptest.Server
	s    *Handler
	logs *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func newTestServer(t testing.TB, cfg Options, m *backend) *testServer {
	t.Helper()
	if cfg.MaxBodyBytes == 0 {
		def := DefaultOptions()
		def.APIKey, def.RequestTimeout = cfg.APIKey, cfg.RequestTimeout
		if def.RequestTimeout == 0 {
			def.RequestTimeout = 10 * time.Second
		}
		cfg = def
	}
	cfg.Model = "fake/model"
	logs := &syncBuffer{}
	s := newHandler(cfg, slog.New(slog.NewTextHandler(logs, nil)))
	if m != nil {
		if err := s.loadWith(context.Background(), fakeLoader(m)); err != nil {
			t.Fatal(err)
		}
	}
	ts := httptest.NewServer(s)
	t.Cleanup(func() {
		ts.Close()
		s.Close()
	})
	return &testServer{Server: ts, s: s, logs: logs}
}

// do sends body (a string sent as is, anything else as JSON) and returns the
// status, headers and body.
func (ts *testServer) do(t testing.TB, method, path string, body any, hdr ...string) (int, http.Header, []byte) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, ts.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, out
}

func (ts *testServer) post(t testing.TB, path string, body any) (int, []byte) {
	t.Helper()
	code, _, b := ts.do(t, "POST", path, body)
	return code, b
}

func decode[T any](t testing.TB, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decoding %s: %v", b, err)
	}
	return v
}

// wantError checks an OpenAI-shaped error with status and a message part.
func wantError(t testing.TB, code int, body []byte, wantCode int, wantMsg string) {
	t.Helper()
	if code != wantCode {
		t.Fatalf("status %d, want %d; body %s", code, wantCode, body)
	}
	var e struct {
		Error struct {
			Message string  `json:"message"`
			Type    string  `json:"type"`
			Param   *string `json:"param"`
			Code    *string `json:"code"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Error.Message == "" || e.Error.Type == "" {
		t.Fatalf("not an OpenAI error body: %s", body)
	}
	if !strings.Contains(e.Error.Message, wantMsg) {
		t.Fatalf("message %q does not contain %q", e.Error.Message, wantMsg)
	}
}

type embeddingsResponse struct {
	Object string `json:"object"`
	Model  string `json:"model"`
	Data   []struct {
		Object    string          `json:"object"`
		Index     int             `json:"index"`
		Embedding json.RawMessage `json:"embedding"`
	} `json:"data"`
	Usage struct {
		PromptTokens int `json:"prompt_tokens"`
		TotalTokens  int `json:"total_tokens"`
	} `json:"usage"`
}

func (r embeddingsResponse) vectors(t testing.TB) [][]float32 {
	t.Helper()
	out := make([][]float32, len(r.Data))
	for i, d := range r.Data {
		if d.Index != i || d.Object != "embedding" {
			t.Fatalf("data[%d] = index %d object %q", i, d.Index, d.Object)
		}
		if len(d.Embedding) > 0 && d.Embedding[0] == '"' {
			var s string
			json.Unmarshal(d.Embedding, &s)
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil || len(b)%4 != 0 {
				t.Fatalf("bad base64 embedding %q: %v", s, err)
			}
			v := make([]float32, len(b)/4)
			for j := range v {
				v[j] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*j:]))
			}
			out[i] = v
			continue
		}
		if err := json.Unmarshal(d.Embedding, &out[i]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func sameVectors(t testing.TB, got, want [][]float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d vectors, want %d", len(got), len(want))
	}
	for i := range got {
		if len(got[i]) != len(want[i]) {
			t.Fatalf("vector %d has %d dims, want %d", i, len(got[i]), len(want[i]))
		}
		for j := range got[i] {
			if got[i][j] != want[i][j] {
				t.Fatalf("vector %d[%d] = %v, want %v", i, j, got[i][j], want[i][j])
			}
		}
	}
}

func TestHealthBeforeAndAfterLoad(t *testing.T) {
	ts := newTestServer(t, Options{}, nil)
	code, hdr, body := ts.do(t, "GET", "/health", nil)
	wantError(t, code, body, http.StatusServiceUnavailable, "loading")
	if hdr.Get("Retry-After") == "" {
		t.Error("503 while loading has no Retry-After")
	}
	code, _, body = ts.do(t, "POST", "/v1/embeddings", map[string]any{"input": "hi"})
	wantError(t, code, body, http.StatusServiceUnavailable, "loading")

	if err := ts.s.loadWith(context.Background(), fakeLoader(fakeModel())); err != nil {
		t.Fatal(err)
	}
	code, _, body = ts.do(t, "GET", "/health", nil)
	if code != 200 {
		t.Fatalf("health after load: %d %s", code, body)
	}
}

func TestLoadFailure(t *testing.T) {
	ts := newTestServer(t, Options{}, nil)
	if err := ts.s.loadWith(context.Background(), fakeLoader(nil)); err == nil {
		t.Fatal("load of a failing loader succeeded")
	}
	code, _, body := ts.do(t, "GET", "/health", nil)
	wantError(t, code, body, http.StatusServiceUnavailable, "failed to load")
}

func TestModels(t *testing.T) {
	ts := newTestServer(t, Options{}, fakeModel())
	code, _, body := ts.do(t, "GET", "/v1/models", nil)
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	r := decode[struct {
		Object string `json:"object"`
		Data   []struct {
			ID     string `json:"id"`
			Object string `json:"object"`
		} `json:"data"`
	}](t, body)
	if r.Object != "list" || len(r.Data) != 1 || r.Data[0].ID != "fake/model" || r.Data[0].Object != "model" {
		t.Fatalf("models = %s", body)
	}
}

func TestEmbeddingsFormats(t *testing.T) {
	m := fakeModel()
	emb := m.Embedder.(*fakeEmbedder)
	ts := newTestServer(t, Options{}, m)
	inputs := []string{"hello world", "a b c", "Grüße, 世界"}
	want := [][]float32{emb.vector(inputs[0]), emb.vector(inputs[1]), emb.vector(inputs[2])}
	for _, format := range []string{"", "float", "base64"} {
		code, body := ts.post(t, "/v1/embeddings", map[string]any{"input": inputs, "model": "anything", "encoding_format": format})
		if code != 200 {
			t.Fatalf("%s: %d %s", format, code, body)
		}
		r := decode[embeddingsResponse](t, body)
		if r.Object != "list" || r.Model != "fake/model" {
			t.Fatalf("response = %s", body)
		}
		sameVectors(t, r.vectors(t), want)
		if r.Usage.PromptTokens != 4+5+4 || r.Usage.TotalTokens != r.Usage.PromptTokens {
			t.Errorf("usage = %+v", r.Usage)
		}
	}
	// A single string gives one item.
	code, body := ts.post(t, "/v1/embeddings", map[string]any{"input": "hello world"})
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	sameVectors(t, decode[embeddingsResponse](t, body).vectors(t), want[:1])

	// Dimensions keep the leading components, renormalised.
	code, body = ts.post(t, "/v1/embeddings", map[string]any{"input": "hello world", "dimensions": 3})
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	v := decode[embeddingsResponse](t, body).vectors(t)[0]
	w := append([]float32(nil), want[0][:3]...)
	l2normalize(w)
	sameVectors(t, [][]float32{v}, [][]float32{w})
}

func TestTEIEmbed(t *testing.T) {
	m := fakeModel()
	emb := m.Embedder.(*fakeEmbedder)
	emb.normalize = false
	ts := newTestServer(t, Options{}, m)
	code, body := ts.post(t, "/embed", map[string]any{"inputs": "hello world"})
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	got := decode[[][]float32](t, body)
	want := emb.vector("hello world")
	l2normalize(want) // TEI normalises by default
	sameVectors(t, got, [][]float32{want})

	code, body = ts.post(t, "/embed", map[string]any{"inputs": []string{"hello world", "x"}, "normalize": false})
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	sameVectors(t, decode[[][]float32](t, body), [][]float32{emb.vector("hello world"), emb.vector("x")})
}

func TestBadRequests(t *testing.T) {
	long := strings.Repeat("word ", 40) // 42 tokens > 16
	many := make([]string, 300)
	for i := range many {
		many[i] = "x"
	}
	cases := []struct {
		name, path string
		body       any
		code       int
		msg        string
	}{
		{"malformed", "/v1/embeddings", `{"input": "a"`, 400, "malformed JSON"},
		{"syntax", "/v1/embeddings", `{"input": 'a'}`, 400, "malformed JSON at offset"},
		{"not object", "/v1/embeddings", `["a"]`, 400, "JSON object"},
		{"empty body", "/v1/embeddings", ``, 400, "body is empty"},
		{"trailing", "/v1/embeddings", `{"input":"a"} {}`, 400, "after the JSON object"},
		{"wrong type", "/v1/embeddings", `{"input": 5}`, 400, "string or a list of strings"},
		{"wrong item", "/v1/embeddings", `{"input": ["a", true]}`, 400, "input item 1 must be a string"},
		{"token ids", "/v1/embeddings", `{"input": [1, 2, 3]}`, 400, "token id inputs are not supported"},
		{"wrong field type", "/v1/embeddings", `{"input": "a", "dimensions": "x"}`, 400, `"dimensions" has the wrong type`},
		{"missing input", "/v1/embeddings", `{"model": "m"}`, 400, "input is required"},
		{"empty string", "/v1/embeddings", `{"input": ""}`, 400, "input is an empty string"},
		{"empty list", "/v1/embeddings", `{"input": []}`, 400, "empty list"},
		{"empty item", "/v1/embeddings", `{"input": ["a", " "]}`, 400, "input[1] is an empty string"},
		{"invalid utf8", "/v1/embeddings", []byte("{\"input\": \"a\xff\xfeb\"}"), 400, "not valid UTF-8 (first bad byte at offset 12)"},
		{"unknown field", "/v1/embeddings", `{"input": "a", "inptu": "b"}`, 400, `unknown field "inptu"`},
		{"format", "/v1/embeddings", `{"input": "a", "encoding_format": "hex"}`, 400, "encoding_format"},
		{"dimensions", "/v1/embeddings", `{"input": "a", "dimensions": 9}`, 400, "between 1 and 8"},
		{"too many", "/v1/embeddings", map[string]any{"input": many}, 413, "limit is 256"},
		{"too long", "/v1/embeddings", map[string]any{"input": []string{"ok", long}}, 413, "input[1] has 42 tokens; the limit is 16"},
		{"too long tei", "/embed", map[string]any{"inputs": long, "truncate": false}, 413, "limit is 16"},
		{"direction", "/embed", `{"inputs": "a", "truncation_direction": "Left"}`, 400, "unsupported: truncation_direction"},
		{"body too large", "/v1/embeddings", `{"input": "` + strings.Repeat("a", 3<<20) + `"}`, 413, "larger than the limit of 2097152 bytes"},
		{"max_tokens", "/v1/completions", `{"prompt": "a", "max_tokens": 0}`, 400, "max_tokens must be between"},
		{"temperature", "/v1/completions", `{"prompt": "a", "temperature": 3}`, 400, "temperature must be between 0 and 2"},
		{"top_p", "/v1/completions", `{"prompt": "a", "top_p": 0}`, 400, "top_p"},
		{"n", "/v1/completions", `{"prompt": "a", "n": 2}`, 400, "unsupported: n"},
		{"stop type", "/v1/completions", `{"prompt": "a", "stop": 3}`, 400, "stop must be a string"},
		{"stop count", "/v1/completions", `{"prompt": "a", "stop": ["a","b","c","d","e"]}`, 400, "at most 4"},
		{"context", "/v1/completions", `{"prompt": "a", "max_tokens": 100}`, 400, "maximum context length is 64"},
		{"chat", "/v1/chat/completions", `{"model": "gpt2", "messages": [{"role": "user", "content": "hi"}]}`, 400, "model has no chat template"},
		{"chat no messages", "/v1/chat/completions", `{"model": "gpt2"}`, 400, "messages is required"},
		{"classify top_k", "/classify", `{"inputs": "a", "top_k": 0}`, 400, "top_k must be at least 1"},
		{"ner aggregation", "/ner", `{"inputs": "a", "aggregation_strategy": "mean"}`, 400, "aggregation_strategy must be one of"},
		{"qa missing", "/qa", `{"question": "who?"}`, 400, "context is required"},
		{"fill no mask", "/fill-mask", `{"inputs": "Paris is a city"}`, 400, "must contain the mask token [MASK]"},
		{"unknown route", "/v2/embeddings", `{}`, 404, "no route"},
	}
	ts := newTestServer(t, Options{}, fakeModel())
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body := ts.post(t, c.path, c.body)
			wantError(t, code, body, c.code, c.msg)
		})
	}
	t.Run("method", func(t *testing.T) {
		code, hdr, body := ts.do(t, "GET", "/v1/embeddings", nil)
		wantError(t, code, body, 405, "use POST")
		if hdr.Get("Allow") != "POST" {
			t.Errorf("Allow = %q", hdr.Get("Allow"))
		}
	})
	t.Run("content type", func(t *testing.T) {
		code, _, body := ts.do(t, "POST", "/v1/embeddings", `{"input":"a"}`, "Content-Type", "text/plain")
		wantError(t, code, body, 415, "not JSON")
	})
	t.Run("truncate", func(t *testing.T) {
		code, body := ts.post(t, "/embed", map[string]any{"inputs": long, "truncate": true})
		if code != 200 {
			t.Fatalf("truncate: %d %s", code, body)
		}
		code, body = ts.post(t, "/v1/embeddings", map[string]any{"input": long, "truncate": true})
		if code != 200 || decode[embeddingsResponse](t, body).Usage.PromptTokens != 16 {
			t.Fatalf("truncate: %d %s", code, body)
		}
	})
	// The server still answers after all that.
	if code, body := ts.post(t, "/v1/embeddings", map[string]any{"input": "fine"}); code != 200 {
		t.Fatalf("%d %s", code, body)
	}
}

func TestNotServed(t *testing.T) {
	ts := newTestServer(t, Options{}, &backend{ID: "enc", Tokens: fakeTokens{16}, Embedder: &fakeEmbedder{dim: 4}})
	code, body := ts.post(t, "/v1/completions", map[string]any{"prompt": "hi"})
	wantError(t, code, body, 404, `model "enc" does not support completions (it serves: embeddings)`)
	code, body = ts.post(t, "/classify", map[string]any{"inputs": "hi"})
	wantError(t, code, body, 404, "does not support classification")
}

type completion struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Model   string `json:"model"`
	Choices []struct {
		Text         string  `json:"text"`
		Index        int     `json:"index"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
		TotalTokens      int `json:"total_tokens"`
	} `json:"usage"`
}

// stream posts a streamed completion and returns its events (without [DONE])
// and whether [DONE] ended it.
func (ts *testServer) stream(t testing.TB, body any) ([]completion, bool) {
	t.Helper()
	j, _ := json.Marshal(body)
	resp, err := ts.Client().Post(ts.URL+"/v1/completions", "application/json", bytes.NewReader(j))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("stream: %d %s", resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	var events []completion
	sc := bufio.NewScanner(resp.Body)
	done := false
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			t.Fatalf("not an SSE data line: %q", line)
		}
		if done {
			t.Fatalf("event after [DONE]: %q", line)
		}
		if data == "[DONE]" {
			done = true
			continue
		}
		events = append(events, decode[completion](t, []byte(data)))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return events, done
}

func TestCompletionsStreamMatches(t *testing.T) {
	ts := newTestServer(t, Options{}, fakeModel())
	for _, req := range []map[string]any{
		{"prompt": "Once upon a time", "max_tokens": 12, "seed": 42, "temperature": 0.8, "top_p": 0.9},
		{"prompt": "Once upon a time", "max_tokens": 12, "temperature": 0},
		{"prompt": "Once upon a time", "max_tokens": 30, "temperature": 0, "stop": []string{" mat"}},
	} {
		code, body := ts.post(t, "/v1/completions", req)
		if code != 200 {
			t.Fatalf("%d %s", code, body)
		}
		full := decode[completion](t, body)
		if full.Object != "text_completion" || full.Model != "fake/model" || len(full.Choices) != 1 || full.Usage == nil {
			t.Fatalf("response %s", body)
		}
		req["stream"] = true
		req["stream_options"] = map[string]any{"include_usage": true}
		events, done := ts.stream(t, req)
		if !done {
			t.Fatal("stream did not end with [DONE]")
		}
		var text strings.Builder
		var finish string
		for _, e := range events[:len(events)-1] {
			for _, c := range e.Choices {
				text.WriteString(c.Text)
				if c.FinishReason != nil {
					finish = *c.FinishReason
				}
			}
		}
		last := events[len(events)-1]
		if last.Usage == nil || len(last.Choices) != 0 || *last.Usage != *full.Usage {
			t.Fatalf("usage event %+v, want %+v", last, full.Usage)
		}
		if text.String() != full.Choices[0].Text || finish != *full.Choices[0].FinishReason {
			t.Fatalf("stream %q (%s) != full %q (%s)", text.String(), finish, full.Choices[0].Text, *full.Choices[0].FinishReason)
		}
		if req["stop"] != nil && (finish != "stop" || strings.Contains(text.String(), " mat")) {
			t.Fatalf("stop string: %q finish %s", text.String(), finish)
		}
	}
	// Two seeds give two answers (the fake samples), the same seed the same.
	a := func(seed int) string {
		_, b := ts.post(t, "/v1/completions", map[string]any{"prompt": "x", "max_tokens": 20, "seed": seed})
		return decode[completion](t, b).Choices[0].Text
	}
	if a(1) != a(1) || a(1) == a(2) {
		t.Fatal("seed does not control sampling")
	}
}

func TestAPIKey(t *testing.T) {
	ts := newTestServer(t, Options{APIKey: "s3cret"}, fakeModel())
	body := map[string]any{"input": "hi"}
	code, hdr, b := ts.do(t, "POST", "/v1/embeddings", body)
	wantError(t, code, b, 401, "API key")
	if hdr.Get("WWW-Authenticate") == "" {
		t.Error("401 without WWW-Authenticate")
	}
	code, _, b = ts.do(t, "POST", "/v1/embeddings", body, "Authorization", "Bearer wrong")
	wantError(t, code, b, 401, "API key")
	code, _, b = ts.do(t, "POST", "/v1/embeddings", body, "Authorization", "s3cret")
	wantError(t, code, b, 401, "API key")
	code, _, b = ts.do(t, "GET", "/metrics", nil)
	wantError(t, code, b, 401, "API key")
	if code, _, b = ts.do(t, "POST", "/v1/embeddings", body, "Authorization", "Bearer s3cret"); code != 200 {
		t.Fatalf("right key: %d %s", code, b)
	}
	if code, _, b = ts.do(t, "GET", "/health", nil); code != 200 {
		t.Fatalf("health needs no key: %d %s", code, b)
	}
}

func TestHeads(t *testing.T) {
	ts := newTestServer(t, Options{}, fakeModel())
	code, b := ts.post(t, "/classify", map[string]any{"inputs": "great movie", "top_k": 2})
	if code != 200 {
		t.Fatalf("%d %s", code, b)
	}
	if ls := decode[[]label](t, b); len(ls) != 2 || ls[0].Label != "POSITIVE" {
		t.Fatalf("classify %s", b)
	}
	code, b = ts.post(t, "/classify", map[string]any{"inputs": []string{"a", "b"}})
	if ls := decode[[][]label](t, b); code != 200 || len(ls) != 2 || len(ls[1]) != 3 {
		t.Fatalf("classify list %d %s", code, b)
	}
	code, b = ts.post(t, "/ner", map[string]any{"inputs": []string{"I live in Paris", "nothing"}, "aggregation_strategy": "simple"})
	if es := decode[[][]entity](t, b); code != 200 || len(es) != 2 || es[0][0].EntityGroup != "LOC" || es[0][0].Start != 10 || len(es[1]) != 0 {
		t.Fatalf("ner %d %s", code, b)
	}
	code, b = ts.post(t, "/qa", map[string]any{"inputs": map[string]string{"question": "where?", "context": "in Paris today"}})
	if a := decode[answer](t, b); code != 200 || a.Answer != "in" {
		t.Fatalf("qa %d %s", code, b)
	}
	code, b = ts.post(t, "/qa", map[string]any{"question": "where?", "context": "in Paris today", "top_k": 2})
	if a := decode[[]answer](t, b); code != 200 || len(a) != 2 {
		t.Fatalf("qa top_k %d %s", code, b)
	}
	code, b = ts.post(t, "/fill-mask", map[string]any{"inputs": "The capital is [MASK].", "top_k": 2, "targets": []string{"rome"}})
	if f := decode[[]maskFill](t, b); code != 200 || len(f) != 1 || f[0].Sequence != "The capital is rome." {
		t.Fatalf("fill-mask %d %s", code, b)
	}
}

func TestPanicsAreRecovered(t *testing.T) {
	ts := newTestServer(t, Options{}, fakeModel())
	code, b := ts.post(t, "/classify", map[string]any{"inputs": "PANIC"})
	wantError(t, code, b, 500, "internal error")
	code, b = ts.post(t, "/v1/embeddings", map[string]any{"input": []string{"ok", "PANIC"}})
	wantError(t, code, b, 500, "internal error")
	code, b = ts.post(t, "/v1/completions", map[string]any{"prompt": "PANIC"})
	wantError(t, code, b, 500, "internal error")
	logs := ts.logs.String()
	if strings.Count(logs, "panic") < 3 {
		t.Fatalf("panics not logged:\n%s", logs)
	}
	if code, b := ts.post(t, "/v1/embeddings", map[string]any{"input": "fine"}); code != 200 {
		t.Fatalf("after panics: %d %s", code, b)
	}
}

func TestLogsHaveNoBodies(t *testing.T) {
	ts := newTestServer(t, Options{APIKey: "topsecretkey"}, fakeModel())
	ts.do(t, "POST", "/v1/embeddings", map[string]any{"input": "confidential text"}, "Authorization", "Bearer topsecretkey")
	ts.do(t, "POST", "/v1/embeddings", map[string]any{"input": "confidential text"}, "Authorization", "Bearer wrongkey")
	logs := ts.logs.String()
	if !strings.Contains(logs, "path=/v1/embeddings") {
		t.Fatalf("no request log line:\n%s", logs)
	}
	for _, secret := range []string{"confidential", "topsecretkey", "wrongkey"} {
		if strings.Contains(logs, secret) {
			t.Fatalf("log contains %q:\n%s", secret, logs)
		}
	}
}

func TestQueueFull(t *testing.T) {
	cfg := DefaultOptions()
	cfg.MaxQueue = 4
	cfg.MaxBatchSize = 1
	cfg.RequestTimeout = 10 * time.Second
	m := fakeModel()
	m.Embedder.(*fakeEmbedder).delay = 200 * time.Millisecond
	ts := newTestServer(t, cfg, m)
	// 4 inputs wait (one more may be computing); 6 more inputs cannot fit.
	var wg sync.WaitGroup
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ts.post(t, "/v1/embeddings", map[string]any{"input": "x"})
		}()
	}
	time.Sleep(50 * time.Millisecond)
	code, hdr, b := ts.do(t, "POST", "/v1/embeddings", map[string]any{"input": []string{"a", "b", "c", "d", "e", "f"}})
	wantError(t, code, b, 429, "queue is full")
	if hdr.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	wg.Wait()
}

func TestGateFull(t *testing.T) {
	cfg := DefaultOptions()
	cfg.MaxConcurrent = 1
	cfg.MaxWaiting = 0
	cfg.RequestTimeout = 10 * time.Second
	m := fakeModel()
	m.Generator.(*fakeGenerator).delay = 20 * time.Millisecond
	ts := newTestServer(t, cfg, m)
	done := make(chan struct{})
	go func() {
		defer close(done)
		ts.post(t, "/v1/completions", map[string]any{"prompt": "x", "max_tokens": 10})
	}()
	time.Sleep(50 * time.Millisecond)
	code, hdr, b := ts.do(t, "POST", "/v1/completions", map[string]any{"prompt": "x"})
	wantError(t, code, b, 429, "queue is full")
	if hdr.Get("Retry-After") != "1" {
		t.Errorf("Retry-After = %q", hdr.Get("Retry-After"))
	}
	<-done
}

func TestTimeout(t *testing.T) {
	cfg := DefaultOptions()
	cfg.RequestTimeout = 100 * time.Millisecond
	m := fakeModel()
	m.Generator.(*fakeGenerator).delay = 50 * time.Millisecond
	m.Embedder.(*fakeEmbedder).delay = time.Second
	ts := newTestServer(t, cfg, m)
	code, b := ts.post(t, "/v1/completions", map[string]any{"prompt": "x", "max_tokens": 20})
	wantError(t, code, b, 504, "timeout of 100ms")
	code, b = ts.post(t, "/v1/embeddings", map[string]any{"input": "x"})
	wantError(t, code, b, 504, "timeout")
	// A stream that times out ends with an error event and no [DONE].
	events, done := ts.stream(t, map[string]any{"prompt": "x", "max_tokens": 20, "stream": true})
	if done || len(events) == 0 {
		t.Fatalf("timed-out stream: done=%v events=%d", done, len(events))
	}
}

func TestClientDisconnectCancels(t *testing.T) {
	m := fakeModel()
	gen := m.Generator.(*fakeGenerator)
	gen.delay = 20 * time.Millisecond
	ts := newTestServer(t, Options{}, m)
	ctx, cancel := context.WithCancel(context.Background())
	j, _ := json.Marshal(map[string]any{"prompt": "x", "max_tokens": 60, "stream": true})
	req, _ := http.NewRequestWithContext(ctx, "POST", ts.URL+"/v1/completions", bytes.NewReader(j))
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	if _, err := br.ReadString('\n'); err != nil { // first event arrived
		t.Fatal(err)
	}
	cancel()
	resp.Body.Close()
	deadline := time.Now().Add(2 * time.Second)
	for gen.canceled.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("generation was not cancelled when the client went away")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestDynamicBatching(t *testing.T) {
	cfg := DefaultOptions()
	cfg.BatchWait = 20 * time.Millisecond
	m := fakeModel()
	emb := m.Embedder.(*fakeEmbedder)
	emb.delay = 5 * time.Millisecond
	ts := newTestServer(t, cfg, m)
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			text := strings.Repeat("w ", i%5+1)
			code, b := ts.post(t, "/v1/embeddings", map[string]any{"input": text})
			if code != 200 {
				errs <- string(b)
				return
			}
			r := decode[embeddingsResponse](t, b)
			got := r.vectors(t)
			if len(got) != 1 || got[0][0] != emb.vector(text)[0] {
				errs <- "wrong vector for " + text
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	if emb.maxBatch() < 2 {
		t.Fatalf("64 concurrent requests were never batched (largest batch %d)", emb.maxBatch())
	}
	// Token budget: 4 padded tokens per input of "w " (3 tokens) and a
	// budget of 6 allows 2 inputs per batch.
	cfg.MaxBatchTokens = 6
	m2 := fakeModel()
	emb2 := m2.Embedder.(*fakeEmbedder)
	ts2 := newTestServer(t, cfg, m2)
	in := make([]string, 10)
	for i := range in {
		in[i] = "w"
	}
	if code, b := ts2.post(t, "/v1/embeddings", map[string]any{"input": in}); code != 200 {
		t.Fatalf("%d %s", code, b)
	}
	if emb2.maxBatch() != 2 {
		t.Fatalf("largest batch %d under a 6-token budget of 3-token inputs, want 2", emb2.maxBatch())
	}
}

func TestMetrics(t *testing.T) {
	ts := newTestServer(t, Options{}, fakeModel())
	ts.post(t, "/v1/embeddings", map[string]any{"input": []string{"a", "b"}})
	ts.post(t, "/v1/embeddings", `{`)
	ts.post(t, "/v1/completions", map[string]any{"prompt": "a", "max_tokens": 5})
	code, hdr, b := ts.do(t, "GET", "/metrics", nil)
	if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("%d %s", code, hdr.Get("Content-Type"))
	}
	text := string(b)
	for _, want := range []string{
		`embrace_requests_total{route="/v1/embeddings",code="200"} 1`,
		`embrace_requests_total{route="/v1/embeddings",code="400"} 1`,
		`embrace_errors_total{route="/v1/embeddings",type="invalid_request_error"} 1`,
		`embrace_request_duration_seconds_bucket{route="/v1/completions",le="+Inf"} 1`,
		`embrace_request_duration_seconds_count{route="/v1/embeddings"} 2`,
		`embrace_queue_depth{queue="embed"} 0`,
		`embrace_batch_size_count 1`,
		`embrace_batch_size_bucket{le="2"} 1`,
		`embrace_embedded_tokens_total 6`,
		`embrace_generated_tokens_total 5`,
		`embrace_generation_tokens_per_second_count 1`,
		`embrace_model_loaded 1`,
		"# TYPE embrace_batch_size histogram",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	// Every sample line parses as name{labels} value.
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			t.Errorf("bad sample line %q", line)
		}
	}
	if t.Failed() {
		t.Log(text)
	}
}

func TestChatCompletions(t *testing.T) {
	m := fakeModel()
	m.ChatTemplate = "{% for m in messages %}{{ m.content }}{% endfor %}"
	ts := newTestServer(t, Options{}, m)
	msgs := []map[string]any{{"role": "system", "content": "be brief"}, {"role": "user", "content": []map[string]string{{"type": "text", "text": "hi "}, {"type": "text", "text": "there"}}}}
	code, b := ts.post(t, "/v1/chat/completions", map[string]any{"messages": msgs, "max_tokens": 5, "seed": 3, "temperature": 0.7})
	if code != 200 {
		t.Fatalf("%d %s", code, b)
	}
	full := decode[chatResponseJSON](t, b)
	// The fake renders "role: content" lines: its prompt is the words of
	// "system: be brief\nuser: hi there\nassistant:" plus 2.
	if full.Object != "chat.completion" || full.Model != "fake/model" || len(full.Choices) != 1 ||
		full.Choices[0].Message.Role != "assistant" || full.Choices[0].FinishReason != "length" ||
		full.Usage.PromptTokens != 9 || full.Usage.CompletionTokens == nil || *full.Usage.CompletionTokens != 5 {
		t.Fatalf("%s", b)
	}

	// The stream: the role, then content deltas that concatenate to the
	// same answer for the same seed, a finish_reason, the usage, [DONE].
	body, _ := json.Marshal(map[string]any{"messages": msgs, "max_tokens": 5, "seed": 3, "temperature": 0.7, "stream": true, "stream_options": map[string]bool{"include_usage": true}})
	resp, err := http.Post(ts.URL+"/v1/chat/completions", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var text, role, finish string
	var sawUsage, done bool
	for _, line := range strings.Split(string(raw), "\n") {
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			continue
		}
		if data == "[DONE]" {
			done = true
			continue
		}
		var c struct {
			Object  string `json:"object"`
			Choices []struct {
				Delta        chatAnswerDelta `json:"delta"`
				FinishReason *string         `json:"finish_reason"`
			} `json:"choices"`
			Usage *usage `json:"usage"`
		}
		if err := json.Unmarshal([]byte(data), &c); err != nil || c.Object != "chat.completion.chunk" {
			t.Fatalf("bad chunk %q: %v", data, err)
		}
		if c.Usage != nil {
			sawUsage = *c.Usage.CompletionTokens == 5
		}
		for _, ch := range c.Choices {
			role += ch.Delta.Role
			if ch.Delta.Content != nil {
				text += *ch.Delta.Content
			}
			if ch.FinishReason != nil {
				finish = *ch.FinishReason
			}
		}
	}
	if role != "assistant" || text != full.Choices[0].Message.Content || finish != "length" || !sawUsage || !done {
		t.Fatalf("stream role %q text %q finish %q usage %v done %v; want the answer %q\n%s", role, text, finish, sawUsage, done, full.Choices[0].Message.Content, raw)
	}

	for _, c := range []struct {
		body any
		code int
		msg  string
	}{
		{map[string]any{"messages": []any{}}, 400, "messages is an empty list"},
		{map[string]any{"messages": []map[string]any{{"content": "x"}}}, 400, "messages[0].role is required"},
		{map[string]any{"messages": []map[string]any{{"role": "refuse", "content": "x"}}}, 400, "refuses"},
		{map[string]any{"messages": []map[string]any{{"role": "user", "content": []map[string]any{{"type": "image_url"}}}}}, 400, "only text parts"},
		{map[string]any{"messages": msgs, "tools": []map[string]any{{"type": "function"}}}, 400, "unsupported: tools"},
		{map[string]any{"messages": msgs, "logprobs": true}, 400, "unsupported: logprobs"},
		{map[string]any{"messages": msgs, "n": 2}, 400, "unsupported: n"},
		{map[string]any{"messages": msgs, "max_tokens": 60}, 400, "maximum context length is 64"},
		{map[string]any{"messages": msgs, "max_tokens": 3, "max_completion_tokens": 4}, 400, "differ"},
	} {
		code, b := ts.post(t, "/v1/chat/completions", c.body)
		wantError(t, code, b, c.code, c.msg)
	}
	// Without max_tokens the answer may use the rest of the context.
	code, b = ts.post(t, "/v1/chat/completions", map[string]any{"messages": msgs, "temperature": 0})
	if got := decode[chatResponseJSON](t, b); code != 200 || got.Usage.PromptTokens+*got.Usage.CompletionTokens != 64 {
		t.Errorf("default max_tokens: %d %s", code, b)
	}
}

type chatResponseJSON struct {
	Object  string `json:"object"`
	Model   string `json:"model"`
	Choices []struct {
		Message      chatAnswer `json:"message"`
		FinishReason string     `json:"finish_reason"`
	} `json:"choices"`
	Usage usage `json:"usage"`
}

// TestEmbedCancel: a batch's work is cancelled once every request in it has
// gone, and queued inputs of gone requests are skipped.
func TestEmbedCancel(t *testing.T) {
	cfg := DefaultOptions()
	cfg.MaxBatchSize = 1
	cfg.RequestTimeout = 150 * time.Millisecond
	m := fakeModel()
	emb := m.Embedder.(*fakeEmbedder)
	emb.delay = 5 * time.Second
	ts := newTestServer(t, cfg, m)
	start := time.Now()
	code, b := ts.post(t, "/v1/embeddings", map[string]any{"input": []string{"a", "b", "c"}})
	wantError(t, code, b, 504, "timeout")
	deadline := time.Now().Add(2 * time.Second)
	for emb.canceled.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the batch of a timed-out request was not cancelled")
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	if n := emb.calls.Load(); n != 1 {
		t.Errorf("%d batches ran; the 2 inputs queued behind the first should have been skipped", n)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("cancellation took %s", d)
	}
}

// TestLibraryErrors: the library's sentinel errors reach the client as
// statuses, not as 500s.
func TestLibraryErrors(t *testing.T) {
	ts := newTestServer(t, Options{}, fakeModel())
	for _, c := range []struct {
		input string
		code  int
		msg   string
	}{
		{"TOOLONG", 413, "too long"},
		{"CLOSED", 503, "shutting down"},
		{"UNSUPPORTED", 501, "a feature"},
	} {
		code, b := ts.post(t, "/classify", map[string]any{"inputs": c.input})
		wantError(t, code, b, c.code, c.msg)
	}
}
