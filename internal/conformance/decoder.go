package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/embrace-go/embrace/chat"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/embrace-go/embrace/generate"
	"github.com/embrace-go/embrace/models/arch"
	"github.com/embrace-go/embrace/pipeline"
	"github.com/embrace-go/embrace/safetensors"
	"github.com/embrace-go/embrace/tokenizer"
)

// decoderReference is the part of a GPT-2 fixture's reference.json the runner
// reads: the prompts, the generate() calls and the pipeline texts.
type decoderReference struct {
	Prompts    []string                     `json:"prompts"`
	Generation []map[string]json.RawMessage `json:"generation"`
	Chat       []json.RawMessage            `json:"chat"`
	Greedy     []struct {
		Prompt       string `json:"prompt"`
		MaxNewTokens int    `json:"max_new_tokens"`
		Text         string `json:"text"`
	} `json:"greedy"`
}

// checkDecoder runs a causal LM fixture: the folder loaded as a user would,
// the prompts tokenized with its tokenizer, every float output stored for an
// input batch compared with the model's, every generate() entry replayed
// with the parameters it names, and the greedy texts through the
// text-generation pipeline.
func checkDecoder(dir string, m arch.CausalLM, r *Report) {
	ctx := context.Background()
	var ref decoderReference
	if err := readJSON(filepath.Join(dir, "reference.json"), &ref); err != nil {
		r.Fail("%v", err)
		return
	}
	rs, err := safetensors.Open(filepath.Join(dir, "reference.safetensors"))
	if err != nil {
		r.Fail("%v", err)
		return
	}
	defer rs.Close()

	// The prompts, tokenized by the folder's tokenizer, are the stored ids.
	if tok, err := tokenizer.FromDir(dir); r.Check("tokenizer", err) {
		n := 0
		for i, p := range ref.Prompts {
			name := fmt.Sprintf("prompt%d.input_ids", i)
			if !rs.Has(name) {
				continue
			}
			want, _, err := readInts(rs, name)
			if err != nil {
				r.Fail("%v", err)
				continue
			}
			enc, err := tok.Encode(p, true)
			if err != nil {
				r.Fail("%s: tokenize: %v", name, err)
				continue
			}
			if !slices.Equal(enc.IDs, want) {
				r.Fail("%s: tokenizer gives %v, want %v", name, enc.IDs, want)
				continue
			}
			n++
		}
		r.Pass("%d prompts tokenize to their input_ids", n)
	}

	// Every <tag>.input_ids with float outputs <tag>.<name>.
	var tags []string
	for _, n := range rs.Names() {
		if tag, ok := strings.CutSuffix(n, ".input_ids"); ok {
			tags = append(tags, tag)
		}
	}
	sort.Strings(tags)
	for _, tag := range tags {
		checkDecoderOutputs(ctx, m, rs, tag, r)
	}

	for i, g := range ref.Generation {
		checkGeneration(ctx, dir, m, rs, i, g, r)
	}

	if len(ref.Greedy) > 0 {
		checkTextGeneration(ctx, dir, &ref, r)
	}
	if len(ref.Chat) > 0 {
		checkChat(dir, &ref, r)
	}
}

// checkChat renders each chat entry's messages with the folder's template
// through the text-generation pipeline and compares the string exactly,
// then its tokens.
func checkChat(dir string, ref *decoderReference, r *Report) {
	p, err := pipeline.NewTextGeneration(context.Background(), dir, nil)
	if !r.Check("chat: text-generation pipeline", err) {
		return
	}
	defer p.Close()
	for i, raw := range ref.Chat {
		var e struct {
			Messages            json.RawMessage `json:"messages"`
			AddGenerationPrompt *bool           `json:"add_generation_prompt"`
			Rendered            string          `json:"rendered"`
			InputIDs            []int           `json:"input_ids"`
			AddSpecialTokens    *bool           `json:"add_special_tokens"`
		}
		if err := decodeEntry(raw, &e, "messages", "add_generation_prompt", "rendered", "input_ids", "add_special_tokens"); err != nil {
			r.Fail("chat[%d]: %v", i, err)
			continue
		}
		if e.AddGenerationPrompt != nil && !*e.AddGenerationPrompt {
			r.Fail("chat[%d]: unsupported: add_generation_prompt false", i)
			continue
		}
		if e.AddSpecialTokens != nil && *e.AddSpecialTokens {
			r.Fail("chat[%d]: unsupported: tokenizing the rendering with add_special_tokens true", i)
			continue
		}
		msgs, err := chat.MessagesFromJSON(e.Messages)
		if err != nil {
			r.Fail("chat[%d]: messages: %v", i, err)
			continue
		}
		text, ids, err := p.ChatPrompt(msgs, nil)
		if err != nil {
			r.Fail("chat[%d]: %v", i, err)
			continue
		}
		if text != e.Rendered {
			r.Fail("chat[%d]: rendered %q, want %q", i, text, e.Rendered)
			continue
		}
		if e.InputIDs != nil && !slices.Equal(ids, e.InputIDs) {
			r.Fail("chat[%d]: ids %v, want %v", i, ids, e.InputIDs)
			continue
		}
	}
	r.Pass("%d chats rendered and tokenized exactly", len(ref.Chat))
}

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// readInts reads an integer tensor and its shape.
func readInts(rs *safetensors.File, name string) ([]int, []int, error) {
	v, err := rs.Tensor(name)
	if err != nil {
		return nil, nil, err
	}
	ids, err := intsOf(v)
	return ids, v.Shape, err
}

// checkGPT2Outputs runs the batch <tag>.input_ids (with <tag>.attention_mask
// when stored) and compares every float tensor <tag>.<name> the fixture
// holds, at real positions.
func checkDecoderOutputs(ctx context.Context, m arch.CausalLM, rs *safetensors.File, tag string, r *Report) {
	var outs []string
	for _, n := range rs.Names() {
		name, ok := strings.CutPrefix(n, tag+".")
		if !ok || strings.Contains(name, ".") {
			continue
		}
		if dt, _, err := rs.Info(n); err == nil && dt == safetensors.F32 {
			outs = append(outs, name)
		}
	}
	if len(outs) == 0 {
		return // a generation input only
	}
	ids, shape, err := readInts(rs, tag+".input_ids")
	if err != nil {
		r.Fail("%v", err)
		return
	}
	if len(shape) != 2 {
		r.Fail("%s.input_ids has shape %v, want [batch, seq]", tag, shape)
		return
	}
	in := &arch.DecoderInput{IDs: ids, Logits: arch.AllPositions, Hidden: true}
	var use func(int) bool
	if rs.Has(tag + ".attention_mask") {
		mask, _, err := readInts(rs, tag+".attention_mask")
		if err != nil {
			r.Fail("%v", err)
			return
		}
		// Positions follow the mask (as generate numbers them), which
		// matches a plain forward's 0..S-1 on right-padded rows.
		in.Mask = mask
	}
	cache, err := m.NewCache(shape[0], shape[1])
	if err != nil {
		r.Fail("%s: cache: %v", tag, err)
		return
	}
	out, err := m.Forward(ctx, cache, in)
	if err != nil {
		r.Fail("%s: forward: %v", tag, err)
		return
	}
	for _, name := range outs {
		var got []float32
		switch name {
		case "logits":
			got = out.Logits
		case "last_hidden_state":
			got = out.Hidden
		default:
			r.Fail("%s.%s: unsupported: the model produces no %q", tag, name, name)
			continue
		}
		v, _ := rs.Tensor(tag + "." + name)
		want, err := v.Float32s()
		if err != nil {
			r.Fail("%v", err)
			continue
		}
		var want64 []float64
		if v64, err := rs.Tensor(tag + "." + name + "64"); err == nil {
			if want64, err = v64.Float64s(); err != nil || len(want64) != len(want) {
				want64 = nil
			}
		}
		if in.Mask != nil && len(v.Shape) >= 2 && v.Shape[0]*v.Shape[1] == len(in.Mask) {
			per := len(want) / len(in.Mask)
			use = func(i int) bool { return in.Mask[i/per] != 0 }
		}
		r.Compare(tag+"."+name, got, want, want64, use)
	}
}

// checkGeneration replays one entry of the generation list: its input (and
// attention mask), its parameters, and the exact ids of its output.
func checkGeneration(ctx context.Context, dir string, m arch.CausalLM, rs *safetensors.File, i int, g map[string]json.RawMessage, r *Report) {
	what := fmt.Sprintf("generation[%d]", i)
	str := func(key string) string {
		var s string
		if raw, ok := g[key]; ok {
			json.Unmarshal(raw, &s)
		}
		return s
	}
	input, output := str("input"), str("output")
	if input == "" || output == "" {
		r.Fail("%s: entry names no input or output", what)
		return
	}
	what += " " + output
	cfg, err := generate.LoadConfig(dir)
	if err != nil {
		r.Fail("%s: %v", what, err)
		return
	}
	// Start from the folder's generation_config.json, then apply every
	// parameter the entry passed to generate().
	for key, raw := range g {
		var err error
		switch key {
		case "input", "output", "attention_mask":
		case "max_new_tokens":
			err = json.Unmarshal(raw, &cfg.MaxNewTokens)
		case "max_length":
			err = json.Unmarshal(raw, &cfg.MaxLength)
		case "min_new_tokens":
			err = json.Unmarshal(raw, &cfg.MinNewTokens)
		case "min_length":
			err = json.Unmarshal(raw, &cfg.MinLength)
		case "do_sample":
			err = json.Unmarshal(raw, &cfg.DoSample)
			if err == nil && cfg.DoSample {
				r.Fail("%s: unsupported: do_sample true cannot reproduce PyTorch's random draws", what)
				return
			}
		case "repetition_penalty":
			err = json.Unmarshal(raw, &cfg.RepetitionPenalty)
		case "no_repeat_ngram_size":
			err = json.Unmarshal(raw, &cfg.NoRepeatNGramSize)
		case "temperature":
			err = json.Unmarshal(raw, &cfg.Temperature)
		case "top_k":
			err = json.Unmarshal(raw, &cfg.TopK)
		case "top_p":
			err = json.Unmarshal(raw, &cfg.TopP)
		case "min_p":
			err = json.Unmarshal(raw, &cfg.MinP)
		case "pad_token_id":
			err = json.Unmarshal(raw, &cfg.PadTokenID)
		case "eos_token_id":
			var one int
			if json.Unmarshal(raw, &one) == nil {
				cfg.EOSTokenIDs = []int{one}
			} else {
				err = json.Unmarshal(raw, &cfg.EOSTokenIDs)
			}
		case "padding_side":
			if s := str(key); s != "left" {
				r.Fail("%s: unsupported: padding_side %q (decoders generate from left-padded batches)", what, s)
				return
			}
		case "num_beams":
			var n int
			if err = json.Unmarshal(raw, &n); err == nil && n != 1 {
				r.Fail("%s: unsupported: beam search (num_beams %d)", what, n)
				return
			}
		default:
			r.Fail("%s: unsupported: generation parameter %q", what, key)
			return
		}
		if err != nil {
			r.Fail("%s: parameter %s: %v", what, key, err)
			return
		}
	}
	ids, shape, err := readInts(rs, input)
	if err != nil {
		r.Fail("%s: %v", what, err)
		return
	}
	if len(shape) != 2 {
		r.Fail("%s: %s has shape %v, want [batch, seq]", what, input, shape)
		return
	}
	var mask []int
	if name := str("attention_mask"); name != "" {
		if mask, _, err = readInts(rs, name); err != nil {
			r.Fail("%s: %v", what, err)
			return
		}
	}
	want, wshape, err := readInts(rs, output)
	if err != nil {
		r.Fail("%s: %v", what, err)
		return
	}
	rows, err := generate.GeneratePadded(ctx, m, ids, mask, shape[0], cfg)
	if err != nil {
		r.Fail("%s: %v", what, err)
		return
	}
	got := slices.Concat(rows...)
	if !slices.Equal(got, want) {
		for b := range rows {
			w := want[min(b*wshape[len(wshape)-1], len(want)):min((b+1)*wshape[len(wshape)-1], len(want))]
			if !slices.Equal(rows[b], w) {
				r.Fail("%s: row %d: got %v, want %v", what, b, rows[b], w)
				return
			}
		}
		r.Fail("%s: got %d ids, want %d", what, len(got), len(want))
		return
	}
	r.Pass("%s: %d rows of %d ids exact", what, shape[0], len(got)/shape[0])
}

// checkTextGeneration runs reference.json's greedy texts through the
// text-generation pipeline.
func checkTextGeneration(ctx context.Context, dir string, ref *decoderReference, r *Report) {
	p, err := pipeline.NewTextGeneration(ctx, dir, r.options())
	if !r.Check("text-generation pipeline", err) {
		return
	}
	defer p.Close()
	for i, g := range ref.Greedy {
		cfg := p.Config()
		cfg.MaxNewTokens = g.MaxNewTokens
		out, err := p.Generate(ctx, g.Prompt, &cfg)
		if err != nil {
			r.Fail("greedy[%d]: %v", i, err)
			continue
		}
		if out.FullText != g.Text {
			r.Fail("greedy[%d]: text %q, want %q", i, out.FullText, g.Text)
			continue
		}
	}
	r.Pass("%d pipeline texts", len(ref.Greedy))
}
