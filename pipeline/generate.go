package pipeline

import (
	"context"
	"errors"
	"fmt"
	"github.com/embrace-go/embrace/chat"
	"iter"
	"slices"
	"strings"

	"github.com/embrace-go/embrace/generate"
	"github.com/embrace-go/embrace/hfdir"
	"github.com/embrace-go/embrace/models"
	"github.com/embrace-go/embrace/models/arch"
	"github.com/embrace-go/embrace/tokenizer"
)

// TextGeneration is the "text-generation" pipeline: prompt text in,
// continued text out, for every registered causal language model. Defaults come from the
// folder's generation_config.json. It is safe for concurrent use; each call
// decodes with its own cache.
type TextGeneration struct {
	dir      string
	tok      *tokenizer.Tokenizer
	model    arch.CausalLM
	defaults generate.Config
	meta     *hfdir.Folder
	// template is the folder's default chat template (nil when it has
	// none, or when it fails to compile: templateErr says why).
	template    *chat.Template
	templateErr error
}

// GeneratedText is one continuation.
type GeneratedText struct {
	// Text is the generated text alone; FullText is the prompt followed by
	// it (what transformers returns as generated_text by default). With stop
	// strings both end just before the stop string.
	Text, FullText string
	// TokenIDs are the generated ids (an end token included when one was
	// generated).
	TokenIDs []int
	// FinishReason is "eos" (an end token), "stop" (a stop string) or
	// "length" (the token limit).
	FinishReason FinishReason
}

// FinishReason says why a generation ended.
type FinishReason string

// The reasons, named as the OpenAI API names them where it has them.
const (
	FinishEOS    FinishReason = "eos"    // an end token
	FinishStop   FinishReason = "stop"   // a stop string
	FinishLength FinishReason = "length" // the token limit or the context limit
)

// NewTextGeneration loads the tokenizer, model and generation defaults of a
// causal language model folder (or Hub repo id).
func NewTextGeneration(ctx context.Context, nameOrDir string, opt *Options) (*TextGeneration, error) {
	dir, err := resolve(ctx, nameOrDir, opt)
	if err != nil {
		return nil, err
	}
	f, err := hfdir.Read(dir)
	if err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	m, err := models.LoadCausalLM(f, opt.load())
	if err != nil {
		return nil, fmt.Errorf("pipeline: text generation: %w", err)
	}
	tok, err := tokenizer.FromDir(dir)
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("pipeline: %s: %w", dir, err)
	}
	tok = tok.WithThreads(opt.threads())
	cfg, err := generate.FolderConfig(f)
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	cfg.Decoder = tok
	p := &TextGeneration{dir: dir, tok: tok, model: m, defaults: cfg, meta: f}
	p.template, p.templateErr = chat.FromFolder(f.Tokenizer, "")
	return p, nil
}

// Close releases the model's memory mapping.
func (p *TextGeneration) Close() error { return p.model.Close() }

// Tokenizer returns the folder's tokenizer.
func (p *TextGeneration) Tokenizer() *tokenizer.Tokenizer { return p.tok }

// Model returns the loaded model.
func (p *TextGeneration) Model() arch.CausalLM { return p.model }

// Config returns the generation defaults (from generation_config.json), to
// modify and pass to Generate, GenerateBatch or Stream.
func (p *TextGeneration) Config() generate.Config {
	c := p.defaults
	c.EOSTokenIDs = slices.Clone(c.EOSTokenIDs)
	c.StopStrings = slices.Clone(c.StopStrings)
	return c
}

func (p *TextGeneration) config(cfg *generate.Config) generate.Config {
	if cfg == nil {
		return p.Config()
	}
	c := *cfg
	if c.Decoder == nil {
		c.Decoder = p.tok
	}
	// A config built from scratch (generate.Config{MaxNewTokens: 5}) still
	// stops at the folder's end tokens; an empty non-nil list disables them.
	if c.EOSTokenIDs == nil {
		c.EOSTokenIDs = slices.Clone(p.defaults.EOSTokenIDs)
	}
	return c
}

func (p *TextGeneration) encode(prompt string) ([]int, error) {
	enc, err := p.tok.Encode(prompt, true)
	if err != nil {
		return nil, fmt.Errorf("pipeline: tokenizing the prompt: %w", err)
	}
	if len(enc.IDs) == 0 {
		return nil, errors.New("pipeline: the prompt has no tokens")
	}
	return enc.IDs, nil
}

// Generate continues prompt with cfg (nil: the folder's defaults). A cfg
// with nil EOSTokenIDs stops at the folder's end tokens
// (generation_config.json's eos_token_id, every id of a list).
func (p *TextGeneration) Generate(ctx context.Context, prompt string, cfg *generate.Config) (*GeneratedText, error) {
	out, err := p.GenerateBatch(ctx, []string{prompt}, cfg)
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// GenerateBatch continues several prompts at once, left-padded into one
// batch, which gives the same text as one at a time for greedy search.
func (p *TextGeneration) GenerateBatch(ctx context.Context, prompts []string, cfg *generate.Config) ([]*GeneratedText, error) {
	c := p.config(cfg)
	ids := make([][]int, len(prompts))
	for i, pr := range prompts {
		var err error
		if ids[i], err = p.encode(pr); err != nil {
			return nil, fmt.Errorf("prompt %d: %w", i, err)
		}
	}
	gen, err := generate.Generate(ctx, p.model, ids, c)
	if err != nil {
		return nil, err
	}
	out := make([]*GeneratedText, len(prompts))
	for i := range prompts {
		if out[i], err = p.finish(prompts[i], ids[i], gen[i], &c); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// finish decodes a continuation the way transformers' pipeline does: the
// text of prompt+generated ids past the decoded prompt, appended to the
// prompt string.
func (p *TextGeneration) finish(prompt string, promptIDs, gen []int, c *generate.Config) (*GeneratedText, error) {
	r := &GeneratedText{TokenIDs: gen, FinishReason: FinishLength}
	if len(gen) > 0 && slices.Contains(c.EOSTokenIDs, gen[len(gen)-1]) {
		r.FinishReason = FinishEOS
	}
	head, err := p.tok.Decode(promptIDs, true)
	if err != nil {
		return nil, fmt.Errorf("pipeline: decoding: %w", err)
	}
	all, err := p.tok.Decode(slices.Concat(promptIDs, gen), true)
	if err != nil {
		return nil, fmt.Errorf("pipeline: decoding: %w", err)
	}
	text := strings.TrimPrefix(all, head)
	if len(text) == len(all) && head != "" {
		// The prompt's text changed once continued (a merge across the
		// boundary): fall back to decoding the new ids alone.
		if text, err = p.tok.Decode(gen, true); err != nil {
			return nil, fmt.Errorf("pipeline: decoding: %w", err)
		}
	}
	at := len(text)
	for _, s := range c.StopStrings {
		if i := strings.Index(text, s); i >= 0 && i < at {
			at = i
			r.FinishReason = FinishStop
		}
	}
	r.Text = text[:at]
	r.FullText = prompt + r.Text
	return r, nil
}

// Stream continues prompt and yields the generated text piece by piece
// (see generate.Stream): the pieces join to GeneratedText.Text.
func (p *TextGeneration) Stream(ctx context.Context, prompt string, cfg *generate.Config) iter.Seq2[string, error] {
	c := p.config(cfg)
	ids, err := p.encode(prompt)
	if err != nil {
		return func(yield func(string, error) bool) { yield("", err) }
	}
	return generate.Stream(ctx, p.model, ids, c)
}

// ChatOptions are the rendering choices of a chat: the template and the
// variables apply_chat_template passes besides the messages.
type ChatOptions struct {
	// Template names one of the folder's named chat templates ("" for the
	// default).
	Template string
	// Tools and Documents are passed to the template as tools and documents.
	Tools, Documents []any
	// Vars are further template variables (enable_thinking, ...).
	Vars map[string]any
}

// ChatPrompt renders messages with the folder's chat template and
// add_generation_prompt, as apply_chat_template(messages, tokenize=False,
// add_generation_prompt=True) does, and tokenizes the rendering without
// adding special tokens (the template wrote them). A folder without a chat
// template is an error wrapping ErrUnsupported.
func (p *TextGeneration) ChatPrompt(messages []chat.Message, opt *ChatOptions) (string, []int, error) {
	if len(messages) == 0 {
		return "", nil, errors.New("pipeline: a chat needs at least one message")
	}
	var o ChatOptions
	if opt != nil {
		o = *opt
	}
	t, err := p.template, p.templateErr
	if o.Template != "" {
		t, err = chat.FromFolder(p.meta.Tokenizer, o.Template)
	}
	if err != nil {
		return "", nil, fmt.Errorf("pipeline: %s: %w: %w", p.dir, arch.ErrUnsupported, err)
	}
	text, err := t.Render(messages, chat.Options{AddGenerationPrompt: true, Tools: o.Tools, Documents: o.Documents, Vars: o.Vars})
	if err != nil {
		return "", nil, fmt.Errorf("pipeline: chat template: %w", err)
	}
	enc, err := p.tok.Encode(text, false)
	if err != nil {
		return "", nil, fmt.Errorf("pipeline: tokenizing the chat prompt: %w", err)
	}
	if len(enc.IDs) == 0 {
		return "", nil, errors.New("pipeline: the chat prompt has no tokens")
	}
	return text, enc.IDs, nil
}

// Chat answers a conversation: the rendered prompt (ChatPrompt) continued
// with cfg (nil: the folder's defaults, which stop at every end token of
// generation_config.json). FullText is the rendered prompt followed by the
// answer.
func (p *TextGeneration) Chat(ctx context.Context, messages []chat.Message, opt *ChatOptions, cfg *generate.Config) (*GeneratedText, error) {
	prompt, ids, err := p.ChatPrompt(messages, opt)
	if err != nil {
		return nil, err
	}
	c := p.config(cfg)
	gen, err := generate.Generate(ctx, p.model, [][]int{ids}, c)
	if err != nil {
		return nil, err
	}
	return p.finish(prompt, ids, gen[0], &c)
}

// StreamChat is Chat yielding the answer piece by piece.
func (p *TextGeneration) StreamChat(ctx context.Context, messages []chat.Message, opt *ChatOptions, cfg *generate.Config) iter.Seq2[string, error] {
	_, ids, err := p.ChatPrompt(messages, opt)
	if err != nil {
		return func(yield func(string, error) bool) { yield("", err) }
	}
	return generate.Stream(ctx, p.model, ids, p.config(cfg))
}
