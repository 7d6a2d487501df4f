package pipeline

import (
	"context"
	"errors"
	"slices"

	"encoding/json"
	"github.com/embrace-go/embrace/chat"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

// generationFixture returns the shared gpt2 fixture folder or skips.
func generationFixture(t testing.TB) string {
	t.Helper()
	var root string
	if p := os.Getenv("EMBRACE_SHARED_FIXTURES"); p != "" {
		root = p
	} else {
		root = filepath.Join("..", "..", "shared", "fixtures")
	}
	dir := filepath.Join(root, "models", "gpt2")
	if _, err := os.Stat(filepath.Join(dir, "reference.json")); err != nil {
		t.Skip("no fixtures: set $EMBRACE_SHARED_FIXTURES or provide ../shared/fixtures beside the module root")
	}
	return dir
}

// The reference's greedy texts, the streamed pieces, a stop string and a
// batch, through the public pipeline.
func TestTextGeneration(t *testing.T) {
	dir := generationFixture(t)
	ctx := context.Background()
	p, err := NewTextGeneration(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var ref struct {
		Greedy []struct {
			Prompt       string `json:"prompt"`
			MaxNewTokens int    `json:"max_new_tokens"`
			Text         string `json:"text"`
		} `json:"greedy"`
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "reference.json"))
	if err := json.Unmarshal(raw, &ref); err != nil || len(ref.Greedy) == 0 {
		t.Fatalf("reference.json greedy list: %v", err)
	}
	prompts := make([]string, len(ref.Greedy))
	for i, g := range ref.Greedy {
		prompts[i] = g.Prompt
		cfg := p.Config()
		cfg.MaxNewTokens = g.MaxNewTokens
		got, err := p.Generate(ctx, g.Prompt, &cfg)
		if err != nil {
			t.Fatal(err)
		}
		if got.FullText != g.Text {
			t.Errorf("%q: got %q, want %q", g.Prompt, got.FullText, g.Text)
		}
		var pieces []string
		for piece, err := range p.Stream(ctx, g.Prompt, &cfg) {
			if err != nil {
				t.Fatal(err)
			}
			if !utf8.ValidString(piece) {
				t.Fatalf("broken UTF-8 piece %q", piece)
			}
			pieces = append(pieces, piece)
		}
		if j := strings.Join(pieces, ""); j != got.Text {
			t.Errorf("%q: stream joins to %q, want %q", g.Prompt, j, got.Text)
		}

		// A stop string taken from the middle of the output ends it exactly
		// before the string.
		words := strings.Fields(got.Text)
		if len(words) > 3 {
			stop := " " + words[2]
			cfg.StopStrings = []string{stop}
			s, err := p.Generate(ctx, g.Prompt, &cfg)
			if err != nil {
				t.Fatal(err)
			}
			want := got.Text[:strings.Index(got.Text, stop)]
			if s.Text != want || s.FinishReason != "stop" {
				t.Errorf("stop %q: got %q (%s), want %q", stop, s.Text, s.FinishReason, want)
			}
			var streamed string
			for piece, err := range p.Stream(ctx, g.Prompt, &cfg) {
				if err != nil {
					t.Fatal(err)
				}
				streamed += piece
			}
			if streamed != want {
				t.Errorf("stream with stop %q: %q, want %q", stop, streamed, want)
			}
		}
	}
	// Batched prompts (left-padded) and concurrent callers agree with the
	// single runs.
	cfg := p.Config()
	cfg.MaxNewTokens = ref.Greedy[0].MaxNewTokens
	batch, err := p.GenerateBatch(ctx, prompts, &cfg)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i, g := range ref.Greedy {
		if batch[i].FullText != g.Text {
			t.Errorf("batch %d: %q, want %q", i, batch[i].FullText, g.Text)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := p.Generate(ctx, g.Prompt, &cfg)
			if err != nil || got.FullText != g.Text {
				t.Errorf("concurrent %d: %v %v", i, got, err)
			}
		}()
	}
	wg.Wait()
}

func TestTextGenerationErrors(t *testing.T) {
	dir := generationFixture(t)
	ctx := context.Background()
	if _, err := NewTextGeneration(ctx, filepath.Join(dir, "..", "bert"), nil); err == nil || !strings.Contains(err.Error(), "unsupported") {
		t.Errorf("bert folder: %v", err)
	}
	p, err := NewTextGeneration(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.Generate(ctx, "", nil); err == nil {
		t.Error("empty prompt accepted")
	}
	// Generation stops at the context limit with finish reason "length".
	cfg := p.Config()
	cfg.MaxNewTokens = 1 << 20
	cfg.EOSTokenIDs = nil
	out, err := p.Generate(ctx, "Hello", &cfg)
	if err != nil || out.FinishReason != "length" || len(out.TokenIDs) == 0 {
		t.Errorf("past the context: %+v, %v", out, err)
	}
}

// Chat renders the folder's template (the fixture's exact string and ids)
// and generates until one of generation_config.json's end tokens.
func TestChat(t *testing.T) {
	dir := filepath.Join(fixturesDir(t), "models", "llama")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("no llama fixture: %v", err)
	}
	ctx := context.Background()
	p, err := NewTextGeneration(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	msgs := []chat.Message{{Role: "system", Content: "You are a helpful assistant."}, {Role: "user", Content: "Hi"}}
	text, ids, err := p.ChatPrompt(msgs, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := "<|system|>\nYou are a helpful assistant.</s>\n<|user|>\nHi</s>\n<|assistant|>\n"; text != want {
		t.Fatalf("rendered %q, want %q", text, want)
	}
	enc, _ := p.Tokenizer().Encode(text, false)
	if !slices.Equal(ids, enc.IDs) {
		t.Fatalf("ids %v, tokenizer %v", ids, enc.IDs)
	}
	cfg := p.Config()
	cfg.MaxNewTokens = 6
	out, err := p.Chat(ctx, msgs, nil, &cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.TokenIDs) == 0 || out.FullText != text+out.Text {
		t.Fatalf("chat: %+v", out)
	}
	var streamed strings.Builder
	for piece, err := range p.StreamChat(ctx, msgs, nil, &cfg) {
		if err != nil {
			t.Fatal(err)
		}
		streamed.WriteString(piece)
	}
	if streamed.String() != out.Text {
		t.Errorf("streamed %q, whole %q", streamed.String(), out.Text)
	}
	if _, _, err := p.ChatPrompt(msgs, &ChatOptions{Template: "nope"}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("unknown template: %v", err)
	}
}
