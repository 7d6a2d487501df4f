package serve

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/embrace-go/embrace/chat"
	"github.com/embrace-go/embrace/models/arch"
	"github.com/embrace-go/embrace/pipeline"
	"github.com/embrace-go/embrace/safetensors"
	"github.com/embrace-go/embrace/tokenizer"
)

// fixtures returns the shared reference fixtures folder, or skips.
func fixtures(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("EMBRACE_SHARED_FIXTURES"); d != "" {
		if _, err := os.Stat(filepath.Join(d, "models")); err == nil {
			return d
		}
	}
	// serve -> module root -> ../shared/fixtures
	d, _ := filepath.Abs(filepath.Join("..", "..", "shared", "fixtures"))
	if _, err := os.Stat(d); err == nil {
		return d
	}
	t.Skipf("fixtures not found: set $EMBRACE_SHARED_FIXTURES or put them at ../shared/fixtures beside the module root (%s)", d)
	return ""
}

// fixtureServer serves a fixture model through the real loader.
func fixtureServer(t testing.TB, name string, cfg Options) *testServer {
	t.Helper()
	dir := filepath.Join(fixtures(t), "models", name)
	if cfg.MaxBodyBytes == 0 {
		cfg = DefaultOptions()
	}
	ts := newTestServer(t, cfg, nil)
	ts.s.cfg.Model = dir
	if err := ts.s.loadWith(context.Background(), loadModel); err != nil {
		t.Fatalf("loading %s: %v", name, err)
	}
	return ts
}

func readJSON[T any](t testing.TB, path string) T {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return v
}

func close4(a, b float64) bool { return math.Abs(a-b) <= 1e-4+1e-4*math.Abs(b) }

func TestFixtureEmbeddings(t *testing.T) {
	ts := fixtureServer(t, "minilm-st", Options{})
	dir := filepath.Join(fixtures(t), "models", "minilm-st")
	texts := readJSON[struct {
		Texts []string `json:"texts"`
	}](t, filepath.Join(dir, "reference.json")).Texts

	// What the library gives for the same batch.
	lib, err := pipeline.NewSentenceEmbedder(context.Background(), dir, &pipeline.Options{BatchSize: 64})
	if err != nil {
		t.Fatal(err)
	}
	defer lib.Close()
	want, err := lib.Embed(context.Background(), texts)
	if err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"float", "base64"} {
		code, body := ts.post(t, "/v1/embeddings", map[string]any{"input": texts, "model": "text-embedding-3-small", "encoding_format": format})
		if code != 200 {
			t.Fatalf("%s: %d %s", format, code, body)
		}
		sameVectors(t, decode[embeddingsResponse](t, body).vectors(t), want)
	}
	// TEI's /embed normalises, which this model does already.
	code, body := ts.post(t, "/embed", map[string]any{"inputs": texts})
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	sameVectors(t, decode[[][]float32](t, body), want)

	// And both agree with sentence-transformers.
	ref, err := safetensors.Open(filepath.Join(dir, "reference.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	tv, err := ref.Tensor("embeddings")
	if err != nil {
		t.Fatal(err)
	}
	refv, err := tv.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	d := tv.Shape[1]
	for i := range texts {
		for j := 0; j < d; j++ {
			if !close4(float64(want[i][j]), float64(refv[i*d+j])) {
				t.Fatalf("text %d dim %d: %v, sentence-transformers %v", i, j, want[i][j], refv[i*d+j])
			}
		}
	}

	// One input alone gives the library's vector for it alone.
	one, _ := lib.Embed(context.Background(), texts[3:4])
	code, body = ts.post(t, "/v1/embeddings", map[string]any{"input": texts[3]})
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	sameVectors(t, decode[embeddingsResponse](t, body).vectors(t), one)

	// Too long: 413 without truncate, the truncated vector with it.
	long := strings.Repeat("hello world ", 100)
	code, body = ts.post(t, "/v1/embeddings", map[string]any{"input": long})
	wantError(t, code, body, 413, "the limit is")
	code, body = ts.post(t, "/embed", map[string]any{"inputs": long, "truncate": true})
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	wantLong, _ := lib.Embed(context.Background(), []string{long})
	sameVectors(t, decode[[][]float32](t, body), wantLong)

	// Other endpoints are not this model's.
	code, body = ts.post(t, "/v1/completions", map[string]any{"prompt": "x"})
	wantError(t, code, body, 404, "does not support completions")
}

func TestFixtureMaxInputTokens(t *testing.T) {
	cfg := DefaultOptions()
	cfg.MaxInputTokens = 8
	ts := fixtureServer(t, "minilm-st", cfg)
	text := "the quick brown fox jumps over the lazy dog again and again"
	code, body := ts.post(t, "/v1/embeddings", map[string]any{"input": text})
	wantError(t, code, body, 413, "the limit is 8")
	code, body = ts.post(t, "/v1/embeddings", map[string]any{"input": text, "truncate": true})
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	r := decode[embeddingsResponse](t, body)
	if r.Usage.PromptTokens != 8 {
		t.Fatalf("usage %d tokens, want 8", r.Usage.PromptTokens)
	}
	// The text is cut after its 6th token ([CLS] + 6 + [SEP] = 8).
	dir := filepath.Join(fixtures(t), "models", "minilm-st")
	tok, err := tokenizer.FromDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	enc, _ := tok.Encode(text, true)
	cut := text[:enc.Offsets[6].End]
	if enc2, _ := tok.Encode(cut, true); len(enc2.IDs) != 8 {
		t.Fatalf("%q has %d tokens", cut, len(enc2.IDs))
	}
	lib, err := pipeline.NewSentenceEmbedder(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer lib.Close()
	want, _ := lib.Embed(context.Background(), []string{cut})
	got := r.vectors(t)
	for j := range want[0] {
		if !close4(float64(got[0][j]), float64(want[0][j])) {
			t.Fatalf("truncated embedding differs at %d: %v vs %v", j, got[0][j], want[0][j])
		}
	}
}

func TestFixtureCompletions(t *testing.T) {
	ts := fixtureServer(t, "gpt2", Options{})
	dir := filepath.Join(fixtures(t), "models", "gpt2")
	ref := readJSON[struct {
		Greedy []struct {
			Prompt       string `json:"prompt"`
			MaxNewTokens int    `json:"max_new_tokens"`
			Text         string `json:"text"`
		} `json:"greedy"`
	}](t, filepath.Join(dir, "reference.json"))
	if len(ref.Greedy) == 0 {
		t.Fatal("reference.json has no greedy entries")
	}
	// Greedy completions equal transformers' generate.
	for _, g := range ref.Greedy {
		code, body := ts.post(t, "/v1/completions", map[string]any{"model": "gpt2", "prompt": g.Prompt, "max_tokens": g.MaxNewTokens, "temperature": 0})
		if code != 200 {
			t.Fatalf("%d %s", code, body)
		}
		c := decode[completion](t, body)
		if got := g.Prompt + c.Choices[0].Text; got != g.Text {
			t.Errorf("greedy %q:\n got %q\nwant %q", g.Prompt, got, g.Text)
		}
		if c.Usage.CompletionTokens != g.MaxNewTokens || *c.Choices[0].FinishReason != "length" {
			t.Errorf("usage %+v finish %s", c.Usage, *c.Choices[0].FinishReason)
		}
	}
	// Sampled: the stream concatenates to the non-streamed answer of the same seed.
	for _, req := range []map[string]any{
		{"prompt": ref.Greedy[0].Prompt, "max_tokens": 20, "seed": 7, "temperature": 1.3, "top_p": 0.95},
		{"prompt": ref.Greedy[2].Prompt, "max_tokens": 20, "seed": 11},
		{"prompt": ref.Greedy[1].Prompt, "max_tokens": 20, "temperature": 0, "stop": []string{"built built"}},
	} {
		code, body := ts.post(t, "/v1/completions", req)
		if code != 200 {
			t.Fatalf("%d %s", code, body)
		}
		full := decode[completion](t, body)
		req["stream"] = true
		events, done := ts.stream(t, req)
		if !done {
			t.Fatal("no [DONE]")
		}
		var text strings.Builder
		finish := ""
		for _, e := range events {
			text.WriteString(e.Choices[0].Text)
			if e.Choices[0].FinishReason != nil {
				finish = *e.Choices[0].FinishReason
			}
		}
		if text.String() != full.Choices[0].Text || finish != *full.Choices[0].FinishReason {
			t.Errorf("stream %q (%s) != non-streamed %q (%s)", text.String(), finish, full.Choices[0].Text, *full.Choices[0].FinishReason)
		}
		if req["stop"] != nil && (finish != "stop" || strings.Contains(text.String(), "built built")) {
			t.Errorf("stop string: %q (%s)", text.String(), finish)
		}
	}
	code, body := ts.post(t, "/v1/chat/completions", map[string]any{"model": "gpt2", "messages": []map[string]string{{"role": "user", "content": "hi"}}})
	wantError(t, code, body, 400, "model has no chat template")
	code, body = ts.post(t, "/v1/completions", map[string]any{"prompt": "x", "max_tokens": 64})
	wantError(t, code, body, 400, "maximum context length is 64")
}

func TestFixtureHeads(t *testing.T) {
	root := filepath.Join(fixtures(t), "models")
	t.Run("classify", func(t *testing.T) {
		ts := fixtureServer(t, "bert-cls", Options{})
		ref := readJSON[struct {
			Cases []struct {
				Input  string  `json:"input"`
				TopK   *int    `json:"top_k"`
				Result []label `json:"result"`
			} `json:"text_classification"`
		}](t, filepath.Join(root, "bert-cls", "reference.json"))
		for _, c := range ref.Cases {
			code, body := ts.post(t, "/classify", map[string]any{"inputs": c.Input, "top_k": c.TopK})
			if code != 200 {
				t.Fatalf("%d %s", code, body)
			}
			got := decode[[]label](t, body)
			if len(got) != len(c.Result) {
				t.Fatalf("%q: %d labels, want %d", c.Input, len(got), len(c.Result))
			}
			for i := range got {
				if got[i].Label != c.Result[i].Label || !close4(got[i].Score, c.Result[i].Score) {
					t.Errorf("%q: %+v, want %+v", c.Input, got[i], c.Result[i])
				}
			}
		}
	})
	t.Run("ner", func(t *testing.T) {
		ts := fixtureServer(t, "bert-ner", Options{})
		ref := readJSON[struct {
			Cases []struct {
				Input       string   `json:"input"`
				Aggregation string   `json:"aggregation_strategy"`
				Result      []entity `json:"result"`
			} `json:"token_classification"`
		}](t, filepath.Join(root, "bert-ner", "reference.json"))
		for _, c := range ref.Cases {
			code, body := ts.post(t, "/ner", map[string]any{"inputs": []string{c.Input}, "aggregation_strategy": c.Aggregation})
			if code != 200 {
				t.Fatalf("%d %s", code, body)
			}
			got := decode[[][]entity](t, body)[0]
			if len(got) != len(c.Result) {
				t.Fatalf("%q %s: %d entities, want %d: %s", c.Input, c.Aggregation, len(got), len(c.Result), body)
			}
			for i, w := range c.Result {
				g := got[i]
				if g.Entity != w.Entity || g.EntityGroup != w.EntityGroup || g.Word != w.Word || g.Start != w.Start || g.End != w.End || !close4(g.Score, w.Score) {
					t.Errorf("%q %s: %+v, want %+v", c.Input, c.Aggregation, g, w)
				}
			}
		}
	})
	t.Run("qa", func(t *testing.T) {
		ts := fixtureServer(t, "bert-qa", Options{})
		ref := readJSON[struct {
			Cases []struct {
				Question     string   `json:"question"`
				Context      string   `json:"context"`
				TopK         int      `json:"top_k"`
				MaxAnswerLen int      `json:"max_answer_len"`
				Result       []answer `json:"result"`
			} `json:"question_answering"`
		}](t, filepath.Join(root, "bert-qa", "reference.json"))
		for _, c := range ref.Cases {
			code, body := ts.post(t, "/qa", map[string]any{"question": c.Question, "context": c.Context, "top_k": c.TopK, "max_answer_len": c.MaxAnswerLen})
			if code != 200 {
				t.Fatalf("%d %s", code, body)
			}
			var got []answer
			if c.TopK == 1 {
				got = []answer{decode[answer](t, body)}
			} else {
				got = decode[[]answer](t, body)
			}
			if len(got) != len(c.Result) {
				t.Fatalf("%d answers, want %d", len(got), len(c.Result))
			}
			for i, w := range c.Result {
				if g := got[i]; g.Answer != w.Answer || g.Start != w.Start || g.End != w.End || !close4(g.Score, w.Score) {
					t.Errorf("%+v, want %+v", g, w)
				}
			}
		}
	})
	t.Run("fill-mask", func(t *testing.T) {
		ts := fixtureServer(t, "bert-mlm", Options{})
		ref := readJSON[struct {
			Cases []struct {
				Input  string     `json:"input"`
				TopK   int        `json:"top_k"`
				Result []maskFill `json:"result"`
			} `json:"fill_mask"`
		}](t, filepath.Join(root, "bert-mlm", "reference.json"))
		for _, c := range ref.Cases {
			code, body := ts.post(t, "/fill-mask", map[string]any{"inputs": c.Input, "top_k": c.TopK})
			if code != 200 {
				if strings.Count(c.Input, "[MASK]") != 1 {
					continue // the server takes one mask per input
				}
				t.Fatalf("%d %s", code, body)
			}
			got := decode[[]maskFill](t, body)
			if len(got) != len(c.Result) {
				t.Fatalf("%d candidates, want %d", len(got), len(c.Result))
			}
			for i, w := range c.Result {
				if g := got[i]; g.Token != w.Token || g.TokenStr != w.TokenStr || g.Sequence != w.Sequence || !close4(g.Score, w.Score) {
					t.Errorf("%+v, want %+v", g, w)
				}
			}
		}
	})
}

// TestFixtureRobertaPositionLimit: a RoBERTa head accepts the positions
// less padding_idx + 1 (64 of its 66), the limit arch.Info.MaxPositions
// gives. With model_max_length taken out of tokenizer_config.json, an input
// of 65 or 66 tokens must be a 413 naming the limit, not a model failure.
func TestFixtureRobertaPositionLimit(t *testing.T) {
	src := filepath.Join(fixtures(t), "models", "roberta-cls")
	dir := t.TempDir()
	for _, f := range []string{"config.json", "model.safetensors", "tokenizer.json"} {
		data, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var tc map[string]any
	raw, err := os.ReadFile(filepath.Join(src, "tokenizer_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &tc); err != nil {
		t.Fatal(err)
	}
	delete(tc, "model_max_length")
	raw, _ = json.Marshal(tc)
	if err := os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), raw, 0o644); err != nil {
		t.Fatal(err)
	}

	ts := newTestServer(t, Options{}, nil)
	ts.s.cfg.Model = dir
	if err := ts.s.loadWith(context.Background(), loadModel); err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.FromDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	// Grow a text word by word to 64 tokens, then to just over.
	text, n := "", 0
	textOf := func(limit int) string {
		for n < limit {
			text += " word"
			enc, err := tok.Encode(text, true)
			if err != nil {
				t.Fatal(err)
			}
			n = len(enc.IDs)
		}
		return text
	}
	fits := textOf(64)
	if n != 64 {
		t.Fatalf("could not build a 64-token text (got %d tokens)", n)
	}
	if code, body := ts.post(t, "/classify", map[string]any{"inputs": fits}); code != 200 {
		t.Fatalf("64 tokens: %d %s", code, body)
	}
	over := textOf(65)
	code, body := ts.post(t, "/classify", map[string]any{"inputs": over})
	wantError(t, code, body, 413, "the limit is 64")
	if code, body := ts.post(t, "/classify", map[string]any{"inputs": over, "truncate": true}); code != 200 {
		t.Fatalf("%d tokens with truncate: %d %s", n, code, body)
	}
}

// TestFixtureGeneratorCountsAbandoned: when emit fails (the client left),
// the completion adapter still reports the tokens it generated.
func TestFixtureGeneratorCountsAbandoned(t *testing.T) {
	dir := filepath.Join(fixtures(t), "models", "gpt2")
	g, err := loadGenerator(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer g.p.Close()
	gone := errors.New("client gone")
	pieces := 0
	res, err := g.Generate(context.Background(), "Once upon a time", genParams{MaxTokens: 20, Temperature: 0, TopP: 1}, func(string) error {
		pieces++
		if pieces == 3 {
			return gone
		}
		return nil
	})
	if !errors.Is(err, gone) {
		t.Fatalf("err = %v, want the emit error", err)
	}
	if res.CompletionTokens < 3 {
		t.Errorf("CompletionTokens = %d after 3 pieces, want >= 3", res.CompletionTokens)
	}
}

// TestFixtureEveryModelLoads loads every fixture model folder the way the
// server does and checks it serves the endpoint of the folder's first task
// (pipeline.FolderTasks), so a new architecture or task is not silently
// left without a route.
func TestFixtureEveryModelLoads(t *testing.T) {
	root := filepath.Join(fixtures(t), "models")
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	capability := map[pipeline.Task]string{
		pipeline.TaskSentenceEmbedding:   "embeddings",
		pipeline.TaskTextGeneration:      "completions",
		pipeline.TaskTextClassification:  "classify",
		pipeline.TaskTokenClassification: "ner",
		pipeline.TaskQuestionAnswering:   "qa",
		pipeline.TaskFillMask:            "fill-mask",
		pipeline.TaskRerank:              "rerank",
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(root, e.Name())
		t.Run(e.Name(), func(t *testing.T) {
			tasks, err := pipeline.Tasks(context.Background(), dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			want, ok := capability[tasks[0]]
			if !ok {
				t.Fatalf("no endpoint for the task %s", tasks[0])
			}
			m, err := loadModel(context.Background(), dir, loadOptions{BatchSize: 4})
			if err != nil && (errors.Is(err, errors.ErrUnsupported) || isUnsupported(err)) {
				t.Skipf("the library does not support this folder yet: %v", err)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			if caps := m.capabilities(); !slices.Contains(caps, want) {
				t.Errorf("tasks %v, serves %v; want %s", tasks, caps, want)
			}
		})
	}
}

// TestLoadModelBadFolder: a folder that fails to load is an error, not a
// panic (the loader's cleanup used to dereference its nil result).
func TestLoadModelBadFolder(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"model_type": "nope"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{t.TempDir(), dir} {
		m, err := loadModel(context.Background(), d, loadOptions{})
		if err == nil || m != nil {
			t.Errorf("%s: loaded (%v)", d, err)
		}
	}
}

// TestFixtureChat serves the llama fixture's chat: the prompt is the
// reference rendering of apply_chat_template (its token count is the
// usage), and the greedy answer is the library's own Chat.
func TestFixtureChat(t *testing.T) {
	dir := filepath.Join(fixtures(t), "models", "llama")
	ref := readJSON[struct {
		Chat []struct {
			Messages []map[string]string `json:"messages"`
			InputIDs []int               `json:"input_ids"`
		} `json:"chat"`
	}](t, filepath.Join(dir, "reference.json"))
	if len(ref.Chat) == 0 {
		t.Fatal("reference.json has no chat entries")
	}
	ts := fixtureServer(t, "llama", Options{})
	lib, err := pipeline.NewTextGeneration(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer lib.Close()
	for _, c := range ref.Chat {
		code, body := ts.post(t, "/v1/chat/completions", map[string]any{"messages": c.Messages, "max_tokens": 8, "temperature": 0})
		if code != 200 {
			t.Fatalf("%d %s", code, body)
		}
		got := decode[chatResponseJSON](t, body)
		if got.Usage.PromptTokens != len(c.InputIDs) {
			t.Errorf("prompt_tokens %d, the reference rendering has %d tokens", got.Usage.PromptTokens, len(c.InputIDs))
		}
		msgs := make([]chat.Message, len(c.Messages))
		for i, m := range c.Messages {
			msgs[i] = chat.Message{Role: m["role"], Content: m["content"]}
		}
		cfg := lib.Config()
		cfg.MaxNewTokens, cfg.DoSample = 8, false
		want, err := lib.Chat(context.Background(), msgs, nil, &cfg)
		if err != nil {
			t.Fatal(err)
		}
		if got.Choices[0].Message.Content != want.Text {
			t.Errorf("answer %q, the library's Chat gives %q", got.Choices[0].Message.Content, want.Text)
		}
	}
}

// TestQuantizedEmbeddings: Options.Load reaches the pipelines: the committed
// tiny model served with q8 weights gives embeddings within cosine 0.99 of
// the full-precision ones, and not bit-identical to them.
func TestQuantizedEmbeddings(t *testing.T) {
	dir := filepath.Join("..", "pipeline", "testdata", "minilm-st")
	texts := []string{"Hello world!", "Embrace runs transformers in Go."}
	embed := func(load arch.LoadOptions) [][]float32 {
		h, err := New(context.Background(), Options{Model: dir, Load: load, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		srv := httptest.NewServer(h)
		defer srv.Close()
		ts := &testServer{Server: srv, s: h}
		code, body := ts.post(t, "/v1/embeddings", map[string]any{"input": texts})
		if code != 200 {
			t.Fatalf("%d %s", code, body)
		}
		return decode[embeddingsResponse](t, body).vectors(t)
	}
	full, q8 := embed(arch.LoadOptions{}), embed(arch.LoadOptions{Quantize: arch.QuantizeQ8})
	same := true
	for i := range full {
		var dot, a, b float64
		for j := range full[i] {
			dot += float64(full[i][j]) * float64(q8[i][j])
			a += float64(full[i][j]) * float64(full[i][j])
			b += float64(q8[i][j]) * float64(q8[i][j])
			same = same && full[i][j] == q8[i][j]
		}
		if c := dot / math.Sqrt(a*b); c < 0.99 {
			t.Errorf("text %d: cosine %.4f between q8 and full precision", i, c)
		}
	}
	if same {
		t.Error("q8 embeddings equal the full-precision ones bit for bit: the load options did not reach the model")
	}
	if _, err := NewHandler(Options{Model: dir, Load: arch.LoadOptions{Quantize: "q3"}}); err == nil {
		t.Error("an unknown quantization was accepted")
	}
}
