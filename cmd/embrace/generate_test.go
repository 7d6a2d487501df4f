package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/embrace-go/embrace/internal/clitest"
	"github.com/embrace-go/embrace/pipeline"
)

type genLine struct {
	Prompt        string `json:"prompt"`
	GeneratedText string `json:"generated_text"`
	NewText       string `json:"new_text"`
	TokenIDs      []int  `json:"token_ids"`
	FinishReason  string `json:"finish_reason"`
}

type greedyRef struct {
	Prompt       string `json:"prompt"`
	MaxNewTokens int    `json:"max_new_tokens"`
	Text         string `json:"text"`
}

// TestGreedyMatchesTransformers checks the streamed text and the JSON
// result against transformers' greedy continuations of the fixture.
func TestGenerateGreedyMatchesTransformers(t *testing.T) {
	dir := clitest.Model(t, "gpt2")
	var ref struct {
		Greedy []greedyRef `json:"greedy"`
	}
	clitest.Reference(t, dir, &ref)
	if len(ref.Greedy) == 0 {
		t.Fatal("no greedy entries in reference.json")
	}
	for _, e := range ref.Greedy {
		n := strconv.Itoa(e.MaxNewTokens)
		r := clitest.Run(t, runGenerate, "", "-model", dir, "-max-new-tokens", n, e.Prompt)
		if r.Code != 0 || r.Stdout != e.Text+"\n" {
			t.Errorf("stream: exit %d, stdout %q; transformers %q (stderr %s)", r.Code, r.Stdout, e.Text, r.Stderr)
		}
		r = clitest.Run(t, runGenerate, e.Prompt+"\n", "-model", dir, "-max-new-tokens", n, "-json")
		if r.Code != 0 {
			t.Fatalf("exit %d: %s", r.Code, r.Stderr)
		}
		g := clitest.JSONLines[genLine](t, r.Stdout)[0]
		if g.Prompt != e.Prompt || g.GeneratedText != e.Text || g.Prompt+g.NewText != e.Text {
			t.Errorf("json %+v; transformers %q", g, e.Text)
		}
		if len(g.TokenIDs) != e.MaxNewTokens || g.FinishReason != "length" {
			t.Errorf("json: %d token ids, finish %q; want %d, length", len(g.TokenIDs), g.FinishReason, e.MaxNewTokens)
		}
	}
}

// pieceWriter records every Write, to see that text arrives in pieces.
type pieceWriter struct {
	pieces  []string
	onWrite func()
}

func (w *pieceWriter) Write(p []byte) (int, error) {
	w.pieces = append(w.pieces, string(p))
	if w.onWrite != nil {
		w.onWrite()
	}
	return len(p), nil
}

func TestGenerateStreamsPieces(t *testing.T) {
	dir := clitest.Model(t, "gpt2")
	var out pieceWriter
	var errb bytes.Buffer
	code := runGenerate(context.Background(), []string{"-model", dir, "-max-new-tokens", "12", "Once upon a time"}, nil, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	// The prompt, then several pieces, then the newline.
	if len(out.pieces) < 4 || out.pieces[0] != "Once upon a time" || out.pieces[len(out.pieces)-1] != "\n" {
		t.Errorf("writes %q; want the prompt, pieces as generated, newline", out.pieces)
	}

	// Cancelling mid-stream stops with one line on stderr.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out = pieceWriter{}
	out.onWrite = func() {
		if len(out.pieces) == 2 {
			cancel()
		}
	}
	errb.Reset()
	code = runGenerate(ctx, []string{"-model", dir, "-max-new-tokens", "40", "Once upon a time"}, nil, &out, &errb)
	clitest.WantOneLineError(t, clitest.Result{Code: code, Stderr: errb.String()}, "embrace generate", "argument 1")
	if len(out.pieces) > 10 {
		t.Errorf("%d writes after cancelling at the second", len(out.pieces))
	}
}

func TestGenerateSamplingAndStop(t *testing.T) {
	dir := clitest.Model(t, "gpt2")
	args := []string{"-model", dir, "-json", "-max-new-tokens", "16", "-temperature", "1.3", "-top-p", "0.95", "-seed", "7", "Hugging Face is"}
	a := clitest.Run(t, runGenerate, "", args...)
	b := clitest.Run(t, runGenerate, "", args...)
	if a.Code != 0 || a.Stdout != b.Stdout {
		t.Fatalf("same seed gave %q and %q (exit %d, %s)", a.Stdout, b.Stdout, a.Code, a.Stderr)
	}
	sampled := clitest.JSONLines[genLine](t, a.Stdout)[0]

	// The library with the same settings gives the same tokens.
	gen, err := pipeline.NewTextGeneration(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer gen.Close()
	cfg := gen.Config()
	cfg.MaxNewTokens, cfg.DoSample, cfg.Temperature, cfg.TopP, cfg.Seed = 16, true, 1.3, 0.95, 7
	want, err := gen.Generate(context.Background(), "Hugging Face is", &cfg)
	if err != nil {
		t.Fatal(err)
	}
	if sampled.NewText != want.Text || !equalInts(sampled.TokenIDs, want.TokenIDs) {
		t.Errorf("sampled %+v; library %+v", sampled, want)
	}
	greedy := clitest.JSONLines[genLine](t, clitest.Run(t, runGenerate, "", "-model", dir, "-json", "-max-new-tokens", "16", "Hugging Face is").Stdout)[0]
	other := clitest.JSONLines[genLine](t, clitest.Run(t, runGenerate, "", append([]string{"-seed", "8"}, args...)...).Stdout)[0]
	if sampled.NewText == greedy.NewText && other.NewText == greedy.NewText {
		t.Errorf("sampling with two seeds gave the greedy text %q both times", greedy.NewText)
	}
	// -temperature 0 is greedy whatever else is set.
	zero := clitest.JSONLines[genLine](t, clitest.Run(t, runGenerate, "", "-model", dir, "-json", "-max-new-tokens", "16", "-temperature", "0", "-top-k", "5", "Hugging Face is").Stdout)[0]
	if zero.NewText != greedy.NewText {
		t.Errorf("-temperature 0 gave %q, greedy %q", zero.NewText, greedy.NewText)
	}

	// A stop string taken from the greedy text ends it just before.
	words := strings.Fields(greedy.NewText)
	if len(words) < 3 {
		t.Fatalf("greedy text %q too short to pick a stop string", greedy.NewText)
	}
	stop := words[2]
	cut := greedy.NewText[:strings.Index(greedy.NewText, stop)]
	r := clitest.Run(t, runGenerate, "", "-model", dir, "-json", "-max-new-tokens", "16", "-stop", "no such text", "-stop", stop, "Hugging Face is")
	g := clitest.JSONLines[genLine](t, r.Stdout)[0]
	if r.Code != 0 || g.NewText != cut || g.FinishReason != "stop" {
		t.Errorf("-stop %q: %+v; want new_text %q, finish stop", stop, g, cut)
	}
	r = clitest.Run(t, runGenerate, "", "-model", dir, "-max-new-tokens", "16", "-stop", stop, "Hugging Face is")
	if r.Stdout != "Hugging Face is"+cut+"\n" {
		t.Errorf("streamed with -stop %q: %q; want %q", stop, r.Stdout, "Hugging Face is"+cut+"\n")
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestGenerateErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope")
	clitest.WantOneLineError(t, clitest.Run(t, runGenerate, "", "-model", missing, "hi"), "embrace generate", "does not exist")
	clitest.WantOneLineError(t, clitest.Run(t, runGenerate, "", "-model", clitest.Model(t, "bert-cls"), "hi"), "embrace generate", "loading")
	clitest.WantOneLineError(t, clitest.Run(t, runGenerate, "", "-top-p", "0", "hi"), "embrace generate", "-top-p")
	clitest.WantOneLineError(t, clitest.Run(t, runGenerate, "", "-max-new-tokens", "0", "hi"), "embrace generate", "-max-new-tokens")
	clitest.WantOneLineError(t, clitest.Run(t, runGenerate, "", "-stop", "", "hi"), "embrace generate", "stop")
	r := clitest.Run(t, runGenerate, "", "-h")
	if r.Code != 0 || !strings.Contains(r.Stdout, "-temperature") || !strings.Contains(r.Stdout, generateCommand.DefaultModel) {
		t.Errorf("-h: exit %d, %q", r.Code, r.Stdout)
	}
}

// TestHubRepoID: -model with a repo id downloads from a (fake) Hub into the
// Hugging Face cache and gives the same output as the local folder.
func TestGenerateHubRepoID(t *testing.T) {
	clitest.CheckHubRun(t, runGenerate, clitest.Model(t, "gpt2"), "test-org/tiny-generate", "-json", "-max-new-tokens", "5", "Hello")
}

// -chat renders each prompt with the folder's chat template (the committed
// tiny Qwen2 folder carries Qwen2.5's) and prints the answer; -json shows
// the rendered prompt; a folder without a template fails with one line.
func TestGenerateChat(t *testing.T) {
	dir := filepath.Join("..", "..", "pipeline", "testdata", "qwen2-chat")
	var out, errb bytes.Buffer
	code := runGenerate(context.Background(), []string{"-model", dir, "-chat", "-system", "Be brief.", "-json", "-max-new-tokens", "3", "Hello"}, nil, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var got struct {
		Prompt   string `json:"prompt"`
		TokenIDs []int  `json:"token_ids"`
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n"
	if got.Prompt != want || len(got.TokenIDs) == 0 {
		t.Errorf("got %+v, want the prompt %q", got, want)
	}
	out.Reset()
	errb.Reset()
	code = runGenerate(context.Background(), []string{"-model", filepath.Join("..", "..", "models", "gpt2", "testdata", "gpt2-tiny"), "-chat", "-max-new-tokens", "3", "Hello"}, nil, &out, &errb)
	clitest.WantOneLineError(t, clitest.Result{Code: code, Stderr: errb.String()}, "embrace generate", "chat template")
	if code := runGenerate(context.Background(), []string{"-model", dir, "-quantize", "q4", "Hello"}, nil, &out, &errb); code == 0 {
		t.Error("-quantize q4 accepted")
	}
}
