package generate

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/embrace-go/embrace/hfdir"
	"github.com/embrace-go/embrace/internal/testmodel"
	"github.com/embrace-go/embrace/models"
	"github.com/embrace-go/embrace/models/arch"
	"github.com/embrace-go/embrace/safetensors"
)

// scripted is a fake model over a 256-token byte vocabulary whose logits
// make greedy search emit script (one token per step, per sequence), so the
// loop, stop handling and streaming can be checked exactly.
type scripted struct {
	script []int
	maxPos int
}

type scriptedSession struct {
	m      *scripted
	batch  int
	step   int
	logits []float32
	out    arch.DecoderOutput
}

func (s *scripted) NewCache(batch, capacity int) (arch.Cache, error) {
	return &scriptedSession{m: s, batch: batch, logits: make([]float32, batch*256)}, nil
}
func (s *scripted) Info() arch.Info { return arch.Info{VocabSize: 256, MaxPositions: s.maxPos} }
func (s *scripted) Close() error    { return nil }
func (s *scripted) Forward(ctx context.Context, c arch.Cache, in *arch.DecoderInput) (*arch.DecoderOutput, error) {
	ss := c.(*scriptedSession)
	ss.out.Logits = ss.next()
	return &ss.out, nil
}

func (s *scriptedSession) Batch() int           { return s.batch }
func (s *scriptedSession) Len() int             { return s.step }
func (s *scriptedSession) Cap() int             { return 1 << 20 }
func (s *scriptedSession) Reset()               { s.step = 0 }
func (s *scriptedSession) Truncate(n int) error { s.step = n; return nil }

func (s *scriptedSession) next() []float32 {
	for b := 0; b < s.batch; b++ {
		row := s.logits[b*256 : (b+1)*256]
		for i := range row {
			row[i] = -float32(i%7) * 0.1 // a spread the penalties can act on
		}
		if s.step < len(s.m.script) {
			row[s.m.script[s.step]] = 10
		}
	}
	s.step++
	return s.logits
}

// byteDecoder decodes ids as raw bytes, replacing broken UTF-8 by U+FFFD as
// byte-level BPE decoders do.
type byteDecoder struct{}

func (byteDecoder) Decode(ids []int, skip bool) (string, error) {
	b := make([]byte, 0, len(ids))
	for _, id := range ids {
		if skip && id == 0 {
			continue // 0 plays the end token, a special token
		}
		b = append(b, byte(id))
	}
	return strings.ToValidUTF8(string(b), "\uFFFD"), nil
}

func script(s string) []int {
	ids := make([]int, len(s))
	for i := range len(s) {
		ids[i] = int(s[i])
	}
	return ids
}

func greedy(n int) Config {
	c := DefaultConfig()
	c.MaxNewTokens = n
	c.Decoder = byteDecoder{}
	return c
}

func TestStopTokensAndLengths(t *testing.T) {
	ctx := context.Background()
	m := &scripted{script: append(script("ab"), 0, 'c', 'd')}
	cfg := greedy(10)
	cfg.EOSTokenIDs = []int{0}
	out, err := Generate(ctx, m, [][]int{{'x'}}, cfg)
	if err != nil || !slices.Equal(out[0], []int{'a', 'b', 0}) {
		t.Fatalf("eos: %v %v", out, err)
	}
	// min_new_tokens suppresses the end token until 4 tokens exist.
	cfg.MinNewTokens = 4
	out, _ = Generate(ctx, m, [][]int{{'x'}}, cfg)
	if len(out[0]) < 4 || out[0][2] == 0 {
		t.Fatalf("min_new_tokens: %v", out)
	}
	// max_length counts the prompt.
	cfg = greedy(0)
	cfg.MaxLength = 3
	out, _ = Generate(ctx, m, [][]int{{'x', 'y'}}, cfg)
	if len(out[0]) != 1 {
		t.Fatalf("max_length: %v", out)
	}
	// Generation stops at the model's context limit instead of failing.
	m.maxPos = 4
	out, err = Generate(ctx, m, [][]int{{'x', 'y'}}, greedy(3))
	if err != nil || len(out[0]) != 2 {
		t.Fatalf("max positions: %v, %v", out, err)
	}
	// A prompt that fills the context is refused.
	if _, err := Generate(ctx, m, [][]int{{'a', 'b', 'c', 'd'}}, greedy(3)); !errors.Is(err, ErrTooLong) {
		t.Fatalf("prompt at the limit: %v", err)
	}
}

func TestStopStrings(t *testing.T) {
	ctx := context.Background()
	m := &scripted{script: script("hello world. Next line")}
	cfg := greedy(30)
	cfg.StopStrings = []string{". N", "xyz"}
	out, err := Generate(ctx, m, [][]int{{'>'}}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Token output keeps the tokens that completed the stop string.
	if got := string(bytesOf(out[0])); got != "hello world. N" {
		t.Fatalf("tokens: %q", got)
	}
	var pieces []string
	for p, err := range Stream(ctx, m, []int{'>'}, cfg) {
		if err != nil {
			t.Fatal(err)
		}
		pieces = append(pieces, p)
	}
	if got := strings.Join(pieces, ""); got != "hello world" {
		t.Fatalf("stream with stop string: %q (pieces %q)", got, pieces)
	}
	// Held back: "." could begin ". N" until the next token shows it does.
	for _, p := range pieces {
		if strings.Contains(p, ".") {
			t.Fatalf("a stop-string prefix leaked: %q", pieces)
		}
	}
}

func bytesOf(ids []int) []byte {
	b := make([]byte, len(ids))
	for i, id := range ids {
		b[i] = byte(id)
	}
	return b
}

// Multi-byte characters split over tokens must never be cut in a piece.
func TestStreamUTF8(t *testing.T) {
	ctx := context.Background()
	text := "héllo, 世界 🙂!"
	m := &scripted{script: script(text)}
	cfg := greedy(len(text))
	var got []string
	for p, err := range Stream(ctx, m, []int{'>'}, cfg) {
		if err != nil {
			t.Fatal(err)
		}
		if !utf8.ValidString(p) || strings.ContainsRune(p, utf8.RuneError) {
			t.Fatalf("broken piece %q", p)
		}
		got = append(got, p)
	}
	full, _ := byteDecoder{}.Decode(script(text), true)
	if strings.Join(got, "") != full || full != text {
		t.Fatalf("pieces %q join to %q, want %q", got, strings.Join(got, ""), full)
	}
	if len(got) < 8 {
		t.Fatalf("not streamed: %q", got)
	}
	// Breaking out stops generation without error.
	n := 0
	for range Stream(ctx, m, []int{'>'}, cfg) {
		n++
		break
	}
	if n != 1 {
		t.Fatal("break did not stop the stream")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	var last error
	for _, err := range Stream(cctx, m, []int{'>'}, cfg) {
		last = err
	}
	if !errors.Is(last, context.Canceled) {
		t.Fatalf("cancelled stream ended with %v", last)
	}
}

func TestProcessors(t *testing.T) {
	cfg := DefaultConfig()
	cfg.RepetitionPenalty = 2
	c := newChooser(&cfg, 5)
	s := []float32{1, -1, 2, 3, -4}
	c.repetitionPenalty(s, []int{0, 1, 1, 4, 0})
	if !slices.Equal(s, []float32{0.5, -2, 2, 3, -8}) {
		t.Fatalf("repetition penalty: %v", s)
	}
	s = []float32{0, 0, 0, 0, 0}
	noRepeatNGram(s, []int{1, 2, 3, 1, 2, 4, 1, 2}, 3) // "1 2" was followed by 3 and 4
	if !math.IsInf(float64(s[3]), -1) || !math.IsInf(float64(s[4]), -1) || s[0] != 0 || s[1] != 0 || s[2] != 0 {
		t.Fatalf("no-repeat-ngram: %v", s)
	}

	sample := func(mod func(*Config), scores []float32) []float32 {
		cfg := DefaultConfig()
		cfg.DoSample = true
		cfg.TopK = 0
		mod(&cfg)
		c := newChooser(&cfg, len(scores))
		s := slices.Clone(scores)
		if _, err := c.sample(s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	kept := func(s []float32) (n int) {
		for _, v := range s {
			if !math.IsInf(float64(v), -1) {
				n++
			}
		}
		return n
	}
	lg := []float32{float32(math.Log(0.5)), float32(math.Log(0.3)), float32(math.Log(0.15)), float32(math.Log(0.05))}
	if n := kept(sample(func(c *Config) { c.TopK = 2 }, lg)); n != 2 {
		t.Errorf("top-k 2 kept %d", n)
	}
	if n := kept(sample(func(c *Config) { c.TopP = 0.8 }, lg)); n != 2 { // 0.5+0.3 reaches 0.8
		t.Errorf("top-p 0.8 kept %d", n)
	}
	if n := kept(sample(func(c *Config) { c.TopP = 0.81 }, lg)); n != 3 {
		t.Errorf("top-p 0.81 kept %d", n)
	}
	if n := kept(sample(func(c *Config) { c.MinP = 0.2 }, lg)); n != 3 { // 0.1 threshold drops 0.05
		t.Errorf("min-p 0.2 kept %d", n)
	}
	if s := sample(func(c *Config) { c.Temperature = 2 }, []float32{2, 4}); s[0] != 1 || s[1] != 2 {
		t.Errorf("temperature: %v", s)
	}
}

func TestConfigFile(t *testing.T) {
	c, err := ParseConfig([]byte(`{"eos_token_id":[5,7],"max_new_tokens":9,"do_sample":true,"top_k":0,"stop_strings":"\n\n"}`), "g.json")
	if err != nil || !slices.Equal(c.EOSTokenIDs, []int{5, 7}) || c.MaxNewTokens != 9 || !c.DoSample || c.TopK != 0 || c.StopStrings[0] != "\n\n" || c.Temperature != 1 {
		t.Fatalf("%+v %v", c, err)
	}
	if _, err := ParseConfig([]byte(`{"num_beams":1,"typical_p":1.0,"bad_words_ids":null}`), "g.json"); err != nil {
		t.Errorf("neutral settings refused: %v", err)
	}
	for _, bad := range []string{`{"top_p":1.5}`, `{"temperature":-1,"do_sample":true}`, `{"eos_token_id":"x"}`, `{"repetition_penalty":-1}`, `[`, `{"num_beams":4}`, `{"typical_p":0.5}`, `{"bad_words_ids":[[1]]}`, `{"max_length":-3}`} {
		if _, err := ParseConfig([]byte(bad), "g.json"); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

// --- against the GPT-2 fixtures ---

func fixtures(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("EMBRACE_SHARED_FIXTURES"); p != "" {
		if _, err := os.Stat(filepath.Join(p, "models")); err == nil {
			return p
		}
	}
	dir, _ := os.Getwd()
	for d := dir; filepath.Dir(d) != d; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			p := filepath.Join(d, "..", "shared", "fixtures")
			if _, err := os.Stat(p); err == nil {
				return p
			}
			break
		}
	}
	t.Skip("no fixtures: set $EMBRACE_SHARED_FIXTURES or provide ../shared/fixtures beside the module root")
	return ""
}

func loadLM(t testing.TB, dir string) arch.CausalLM {
	f, err := hfdir.Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := models.LoadCausalLM(f, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func refInts(t testing.TB, f *safetensors.File, name string) ([]int, []int) {
	t.Helper()
	v, err := f.Tensor(name)
	if err != nil {
		t.Fatal(err)
	}
	x, err := v.Int64s()
	if err != nil {
		t.Fatal(err)
	}
	out := make([]int, len(x))
	for i, e := range x {
		out[i] = int(e)
	}
	return out, v.Shape
}

// Every entry of reference.json's generation list, with its parameters read
// from the entry.
func TestFixtureGeneration(t *testing.T) {
	root := filepath.Join(fixtures(t), "models")
	ents, _ := os.ReadDir(root)
	ran := 0
	for _, e := range ents {
		dir := filepath.Join(root, e.Name())
		raw, err := os.ReadFile(filepath.Join(dir, "reference.json"))
		if err != nil {
			continue
		}
		var ref struct {
			Generation []struct {
				Input             string  `json:"input"`
				AttentionMask     string  `json:"attention_mask"`
				Output            string  `json:"output"`
				MaxNewTokens      int     `json:"max_new_tokens"`
				DoSample          bool    `json:"do_sample"`
				RepetitionPenalty float64 `json:"repetition_penalty"`
				NoRepeatNGramSize int     `json:"no_repeat_ngram_size"`
				PadTokenID        *int    `json:"pad_token_id"`
			} `json:"generation"`
		}
		if json.Unmarshal(raw, &ref) != nil || len(ref.Generation) == 0 {
			continue
		}
		ran++
		t.Run(e.Name(), func(t *testing.T) {
			f, err := hfdir.Read(dir)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := models.Task(f); errors.Is(err, arch.ErrUnsupported) {
				t.Skipf("not supported yet: %v", err)
			}
			m := loadLM(t, dir)
			rs, err := safetensors.Open(filepath.Join(dir, "reference.safetensors"))
			if err != nil {
				t.Fatal(err)
			}
			defer rs.Close()
			for _, g := range ref.Generation {
				cfg, err := LoadConfig(dir)
				if err != nil {
					t.Fatal(err)
				}
				cfg.MaxNewTokens = g.MaxNewTokens
				cfg.DoSample = g.DoSample
				if g.RepetitionPenalty != 0 {
					cfg.RepetitionPenalty = g.RepetitionPenalty
				}
				cfg.NoRepeatNGramSize = g.NoRepeatNGramSize
				if g.PadTokenID != nil {
					cfg.PadTokenID = *g.PadTokenID
				}
				ids, shape := refInts(t, rs, g.Input)
				var mask []int
				if g.AttentionMask != "" {
					mask, _ = refInts(t, rs, g.AttentionMask)
				}
				want, _ := refInts(t, rs, g.Output)
				rows, err := GeneratePadded(context.Background(), m, ids, mask, shape[0], cfg)
				if err != nil {
					t.Fatal(err)
				}
				got := slices.Concat(rows...)
				if !slices.Equal(got, want) {
					t.Errorf("%s: got %v\nwant %v", g.Output, got, want)
				}
			}
		})
	}
	if ran == 0 {
		t.Skip("no fixture with a generation list under " + root)
	}
}

// Sampling: a seed reproduces, top-k 1 is greedy, prompts batched with left
// padding give what each gives alone.
func TestSamplingOnGPT2(t *testing.T) {
	dir := t.TempDir()
	if err := (testmodel.GPT2{Layers: 2, Hidden: 32, Heads: 4, Vocab: 1500, Positions: 64, Seed: 3}).Write(dir); err != nil {
		t.Fatal(err)
	}
	m := loadLM(t, dir)
	ctx := context.Background()
	prompts := [][]int{{17, 401, 1203, 9}, {250, 3}, {1111}}
	base, _ := LoadConfig(dir)
	base.MaxNewTokens = 12
	base.EOSTokenIDs = nil // the tiny model may emit 0 anywhere

	greedyOut, err := Generate(ctx, m, prompts, base)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range prompts {
		alone, err := Generate(ctx, m, [][]int{p}, base)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(alone[0], greedyOut[i]) {
			t.Errorf("prompt %d: batched %v, alone %v", i, greedyOut[i], alone[0])
		}
	}

	s := base
	s.DoSample, s.TopK = true, 1
	s.Temperature = 1.7
	k1, err := Generate(ctx, m, prompts, s)
	if err != nil {
		t.Fatal(err)
	}
	for i := range prompts {
		if !slices.Equal(k1[i], greedyOut[i]) {
			t.Errorf("top-k 1 %v differs from greedy %v", k1[i], greedyOut[i])
		}
	}

	s = base
	s.DoSample, s.Temperature, s.TopK, s.TopP, s.MinP = true, 1.5, 0, 0.95, 0.01
	s.Seed = 42
	a, _ := Generate(ctx, m, prompts, s)
	b, _ := Generate(ctx, m, prompts, s)
	if !slices.EqualFunc(a, b, slices.Equal[[]int]) {
		t.Fatalf("same seed, different samples: %v vs %v", a, b)
	}
	differs := false
	for seed := uint64(1); seed < 6 && !differs; seed++ {
		s.Seed = seed
		c, _ := Generate(ctx, m, prompts, s)
		differs = !slices.EqualFunc(a, c, slices.Equal[[]int])
	}
	if !differs {
		t.Fatal("sampling ignores the seed")
	}
	if slices.EqualFunc(a, greedyOut, slices.Equal[[]int]) {
		t.Fatal("sampling at temperature 1.5 reproduced greedy search exactly")
	}
}

// The decoding loop itself allocates nothing per token (greedy and
// sampling): a run of 200 tokens allocates what a run of 20 does.
func TestLoopAllocationsDoNotGrow(t *testing.T) {
	m := &scripted{script: script("abcdefghij")}
	for _, sample := range []bool{false, true} {
		count := func(n int) float64 {
			cfg := DefaultConfig()
			cfg.MaxNewTokens = n
			cfg.DoSample = sample
			cfg.RepetitionPenalty = 1.1
			cfg.NoRepeatNGramSize = 3
			return testing.AllocsPerRun(5, func() {
				if _, err := GeneratePadded(context.Background(), m, []int{1, 2, 3}, nil, 1, cfg); err != nil {
					t.Fatal(err)
				}
			})
		}
		if a, b := count(20), count(200); a != b {
			t.Errorf("sample=%v: %v allocations for 20 tokens, %v for 200", sample, a, b)
		}
	}
}

// A zero Config is greedy search: Config{MaxNewTokens: n} needs nothing
// else, and temperature 0 with sampling is greedy too.
func TestZeroConfig(t *testing.T) {
	ctx := context.Background()
	m := &scripted{script: script("abcdefgh")}
	out, err := Generate(ctx, m, [][]int{{'x'}}, Config{MaxNewTokens: 5})
	if err != nil || string(rune(out[0][0])) != "a" || len(out[0]) != 5 {
		t.Fatalf("zero config: %v, %v", out, err)
	}
	out, err = Generate(ctx, m, [][]int{{'x'}}, Config{MaxNewTokens: 3, DoSample: true})
	if err != nil || len(out[0]) != 3 || out[0][0] != 'a' {
		t.Fatalf("temperature 0 sampling: %v, %v", out, err)
	}
	// No bound at all: up to the model's context.
	m = &scripted{script: script("abcdefgh"), maxPos: 6}
	out, err = Generate(ctx, m, [][]int{{'x', 'y'}}, Config{})
	if err != nil || len(out[0]) != 4 {
		t.Fatalf("unbounded: %v, %v", out, err)
	}
	// A model without a limit needs a bound.
	m.maxPos = 0
	if _, err := Generate(ctx, m, [][]int{{'x'}}, Config{}); err == nil {
		t.Fatal("unbounded generation on an unlimited model accepted")
	}
}
