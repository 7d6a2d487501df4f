package serve

// This file joins the server's small interfaces (model.go) to the library's
// public API: hub for folders and repo ids, pipeline for every task (the
// text-generation pipeline streams completions with generate's settings),
// tokenizer for token counts.

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"maps"
	"slices"
	"strings"

	"github.com/embrace-go/embrace/chat"
	"github.com/embrace-go/embrace/generate"
	"github.com/embrace-go/embrace/hfdir"
	"github.com/embrace-go/embrace/hub"
	"github.com/embrace-go/embrace/models/arch"
	"github.com/embrace-go/embrace/pipeline"
	"github.com/embrace-go/embrace/tokenizer"
)

// loadOptions are the server settings that shape how the model is loaded.
type loadOptions struct {
	// MaxInputTokens lowers the model's limit on tokens per input (0 keeps it).
	MaxInputTokens int
	// BatchSize is how many inputs go through the model in one pass: the
	// dynamic batch size, so a gathered batch is one forward pass.
	BatchSize int
	// Load chooses the weights' precision (Options.Load).
	Load arch.LoadOptions
}

// loadModel resolves ref (a folder, or a repo id downloaded by hub) and loads
// the pipelines its folder serves, as pipeline.FolderTasks names them: a
// sentence-transformers folder or a base encoder gives embeddings, a
// *For<Task> encoder its head, a causal LM completions. The folder's
// metadata (tokenizer_config.json, modules.json) is read through hfdir.
func loadModel(ctx context.Context, ref string, lo loadOptions) (m *backend, err error) {
	dir, err := hub.Resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	m = &backend{ID: ref}
	var closers []func() error
	closeAll := func() error {
		var errs []error
		for _, c := range closers {
			errs = append(errs, c())
		}
		return errors.Join(errs...)
	}
	m.Close = closeAll
	defer func() {
		// The returns below leave m nil on errors: close through the list.
		if err != nil {
			closeAll()
			m = nil
		}
	}()
	popt := &pipeline.Options{BatchSize: max(lo.BatchSize, 1), Load: lo.Load}

	meta, err := hfdir.Read(dir)
	if err != nil {
		return nil, err
	}
	// The pipeline package says which tasks the folder's model serves.
	tasks, err := pipeline.FolderTasks(meta)
	if err != nil {
		return nil, err
	}
	if len(tasks) == 0 {
		return nil, fmt.Errorf("unsupported: %s: the model serves no pipeline task", dir)
	}
	if slices.Contains(tasks, pipeline.TaskTextGeneration) {
		g, err := loadGenerator(ctx, dir, popt)
		if err != nil {
			return nil, err
		}
		closers = append(closers, g.p.Close)
		m.Generator = g
		m.ChatTemplate = chatTemplate(meta)
		return m, nil
	}

	// A sentence-transformers folder keeps the transformer (and its
	// tokenizer) in the Transformer module's folder, usually the root.
	tokMeta := meta
	if st := meta.SentenceTransformers; st != nil {
		if mod, ok := st.Transformer(); ok && mod.Path != "" {
			if tokMeta, err = hfdir.Read(meta.Path(mod.Path)); err != nil {
				return nil, err
			}
		}
	}
	tok, err := tokenizer.FromDir(tokMeta.Dir)
	if err != nil {
		return nil, err
	}
	counter := &fitter{tok: tok.WithTruncation(nil).WithPadding(nil)}
	m.ChatTemplate = chatTemplate(tokMeta)

	if tasks[0] == pipeline.TaskSentenceEmbedding {
		e, err := pipeline.NewSentenceEmbedder(ctx, dir, popt)
		if err != nil {
			return nil, err
		}
		closers = append(closers, e.Close)
		counter.native = e.MaxSeqLength()
		counter.limit = limitOf(e.MaxSeqLength(), lo.MaxInputTokens)
		m.Embedder = &embedAdapter{p: e, fit: counter, normalized: normalizes(meta)}
		m.Tokens = counter
		return m, nil
	}

	// The first task this server has an endpoint for: a one-label
	// classifier (a cross-encoder) is served by /rerank; zero-shot
	// classification has no endpoint, so an NLI model is a text classifier.
	task := tasks[0]
	for _, t := range tasks {
		if t != pipeline.TaskZeroShotClassification {
			task = t
			break
		}
	}
	var info arch.Info // the head pipeline's model
	switch task {
	case pipeline.TaskRerank:
		p, err := pipeline.NewReranker(ctx, dir, popt)
		if err != nil {
			return nil, err
		}
		closers = append(closers, p.Close)
		m.Reranker = &rerankAdapter{p: p, tok: counter.tok, limit: limitOf(p.MaxLength(), lo.MaxInputTokens)}
	case pipeline.TaskTextClassification:
		p, err := pipeline.NewTextClassifier(ctx, dir, popt)
		if err != nil {
			return nil, err
		}
		closers = append(closers, p.Close)
		m.Classifier = &classifyAdapter{p: p, fit: counter}
		info = p.ModelInfo()
	case pipeline.TaskTokenClassification:
		p, err := pipeline.NewTokenClassifier(ctx, dir, popt)
		if err != nil {
			return nil, err
		}
		closers = append(closers, p.Close)
		m.Tagger = &tagAdapter{p: p, fit: counter}
		info = p.ModelInfo()
	case pipeline.TaskQuestionAnswering:
		p, err := pipeline.NewQuestionAnswerer(ctx, dir, popt)
		if err != nil {
			return nil, err
		}
		closers = append(closers, p.Close)
		m.Answerer = &qaAdapter{p: p}
		info = p.ModelInfo()
	case pipeline.TaskFillMask:
		p, err := pipeline.NewFillMask(ctx, dir, popt)
		if err != nil {
			return nil, err
		}
		closers = append(closers, p.Close)
		m.MaskFiller = &fillAdapter{p: p, fit: counter}
		info = p.ModelInfo()
	default:
		return nil, fmt.Errorf("unsupported: %s: no endpoint serves the tasks %v", dir, tasks)
	}
	if task != pipeline.TaskRerank {
		// A head: the limit is the model's positions and the tokenizer's
		// model_max_length. The server checks it (413) or cuts the texts
		// itself before the pipeline sees them, so the pipeline's own
		// truncation never applies.
		counter.limit = limitOf(encoderMaxTokens(info.MaxPositions, tokMeta), lo.MaxInputTokens)
		m.Tokens = counter
	}
	return m, nil
}

func limitOf(model, flag int) int {
	if flag > 0 && (model <= 0 || flag < model) {
		return flag
	}
	return model
}

// normalizes reports whether a sentence-transformers folder ends its
// embeddings with a Normalize module.
func normalizes(meta *hfdir.Folder) bool {
	st := meta.SentenceTransformers
	return st != nil && slices.ContainsFunc(st.Modules, func(m hfdir.Module) bool { return m.Kind == "Normalize" })
}

// encoderMaxTokens is the smaller of the model's positions and the
// tokenizer's model_max_length (0 when neither says).
func encoderMaxTokens(positions int, tokMeta *hfdir.Folder) int {
	n := positions
	if tc := tokMeta.Tokenizer; tc != nil && tc.ModelMaxLength > 0 && (n <= 0 || tc.ModelMaxLength < n) {
		n = tc.ModelMaxLength
	}
	return n
}

// chatTemplate is the folder's default chat template, else its first named
// one ("" when it has none): the server only tells "has a template" (501,
// not rendered) from "has none" (400).
func chatTemplate(meta *hfdir.Folder) string {
	if t, err := meta.Tokenizer.Template(""); err == nil {
		return t
	}
	if tc := meta.Tokenizer; tc != nil && len(tc.ChatTemplates) > 0 {
		names := slices.Sorted(maps.Keys(tc.ChatTemplates))
		return tc.ChatTemplates[names[0]]
	}
	return ""
}

// fitter counts tokens without truncation and cuts texts over the limit
// when the pipeline would not cut them there itself.
type fitter struct {
	tok    *tokenizer.Tokenizer
	limit  int // tokens per input the server allows
	native int // where the pipeline truncates on its own (0: it does not)
}

func (f *fitter) CountTokens(text string) (int, error) {
	enc, err := f.tok.Encode(text, true)
	if err != nil {
		return 0, err
	}
	return len(enc.IDs), nil
}

func (f *fitter) MaxTokens() int { return f.limit }

// fit returns texts with each one over the limit cut after its last token
// that fits, unless the pipeline truncates at exactly the limit anyway.
func (f *fitter) fit(texts []string) ([]string, error) {
	if f.limit <= 0 || (f.native > 0 && f.limit >= f.native) {
		return texts, nil
	}
	var out []string
	for i, t := range texts {
		cut, err := f.cut(t)
		if err != nil {
			return nil, fmt.Errorf("input %d: %w", i, err)
		}
		if cut != t && out == nil {
			out = slices.Clone(texts)
		}
		if out != nil {
			out[i] = cut
		}
	}
	if out == nil {
		return texts, nil
	}
	return out, nil
}

// cut shortens text to at most limit tokens by cutting it at a token's end
// offset; re-tokenizing the cut text may merge differently at the edge, so
// it is checked and cut one token earlier if needed.
func (f *fitter) cut(text string) (string, error) {
	enc, err := f.tok.Encode(text, true)
	if err != nil {
		return "", err
	}
	if len(enc.IDs) <= f.limit {
		return text, nil
	}
	var ends []int // end offsets of the non-special tokens
	for i, id := range enc.IDs {
		if !f.tok.IsSpecial(id) && (enc.SpecialTokensMask == nil || enc.SpecialTokensMask[i] == 0) {
			ends = append(ends, enc.Offsets[i].End)
		}
	}
	keep := f.limit - (len(enc.IDs) - len(ends))
	for try := 0; try < 8 && keep > 0; try, keep = try+1, keep-1 {
		cut := text[:ends[keep-1]]
		n, err := f.CountTokens(cut)
		if err != nil {
			return "", err
		}
		if n <= f.limit {
			return cut, nil
		}
	}
	return "", fmt.Errorf("cannot truncate the text to %d tokens", f.limit)
}

type embedAdapter struct {
	p          *pipeline.SentenceEmbedder
	fit        *fitter
	normalized bool
}

func (a *embedAdapter) Dim() int         { return a.p.Dim() }
func (a *embedAdapter) Normalized() bool { return a.normalized }
func (a *embedAdapter) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	texts, err := a.fit.fit(texts)
	if err != nil {
		return nil, err
	}
	return a.p.Embed(ctx, texts)
}

type classifyAdapter struct {
	p   *pipeline.TextClassifier
	fit *fitter
}

func (a *classifyAdapter) Classify(ctx context.Context, texts []string, topK int) ([][]label, error) {
	texts, err := a.fit.fit(texts)
	if err != nil {
		return nil, err
	}
	res, err := a.p.Classify(ctx, texts, pipeline.ClassifyOptions{TopK: topK})
	if err != nil {
		return nil, err
	}
	out := make([][]label, len(res))
	for i, ls := range res {
		out[i] = make([]label, len(ls))
		for j, l := range ls {
			out[i][j] = label{Label: l.Label, Score: l.Score}
		}
	}
	return out, nil
}

type tagAdapter struct {
	p   *pipeline.TokenClassifier
	fit *fitter
}

func (a *tagAdapter) Tag(ctx context.Context, texts []string, aggregation string) ([][]entity, error) {
	cut, err := a.fit.fit(texts)
	if err != nil {
		return nil, err
	}
	res, err := a.p.Classify(ctx, cut, pipeline.TokenOptions{Aggregation: pipeline.Aggregation(aggregation)})
	if err != nil {
		return nil, err
	}
	out := make([][]entity, len(res))
	for i, es := range res {
		out[i] = make([]entity, len(es))
		for j, e := range es {
			o := entity{Score: e.Score, Word: e.Word, Start: e.StartRune, End: e.EndRune}
			if pipeline.Aggregation(aggregation) == pipeline.AggregateNone {
				o.Entity = e.Label
				idx := e.Index
				o.Index = &idx
			} else {
				o.EntityGroup = e.Label
			}
			out[i][j] = o
		}
	}
	return out, nil
}

type qaAdapter struct{ p *pipeline.QuestionAnswerer }

func (a *qaAdapter) Answer(ctx context.Context, question, context string, topK, maxAnswerLen int) ([]answer, error) {
	res, err := a.p.Answer(ctx, []pipeline.QAInput{{Question: question, Context: context}},
		pipeline.QAOptions{TopK: topK, MaxAnswerLen: maxAnswerLen})
	if err != nil {
		return nil, err
	}
	if len(res) != 1 {
		return nil, fmt.Errorf("question answering returned %d results for 1 question", len(res))
	}
	out := make([]answer, len(res[0]))
	for i, r := range res[0] {
		out[i] = answer{Answer: r.Answer, Score: r.Score, Start: r.StartRune, End: r.EndRune}
	}
	return out, nil
}

type fillAdapter struct {
	p   *pipeline.FillMask
	fit *fitter
}

func (a *fillAdapter) MaskToken() string { return a.p.MaskToken() }

func (a *fillAdapter) Fill(ctx context.Context, texts []string, topK int, targets []string) ([][]maskFill, error) {
	cut, err := a.fit.fit(texts)
	if err != nil {
		return nil, err
	}
	for i := range cut {
		if cut[i] != texts[i] && !strings.Contains(cut[i], a.p.MaskToken()) {
			return nil, &apiError{Status: 413, Type: typeInvalid, Param: "inputs", Code: "input_too_long",
				Message: fmt.Sprintf("inputs[%d]: the mask token is cut off by truncation", i)}
		}
	}
	res, err := a.p.Fill(ctx, cut, pipeline.FillMaskOptions{TopK: topK, Targets: targets})
	if err != nil {
		return nil, err
	}
	out := make([][]maskFill, len(res))
	for i, r := range res {
		if len(r.Masks) != 1 {
			return nil, fmt.Errorf("fill-mask returned %d masks for input %d", len(r.Masks), i)
		}
		for _, p := range r.Masks[0].Predictions {
			out[i] = append(out[i], maskFill{Score: p.Score, Token: p.Token, TokenStr: p.TokenStr, Sequence: p.Sequence})
		}
	}
	return out, nil
}

// rerankAdapter serves /rerank with the cross-encoder pipeline.
type rerankAdapter struct {
	p     *pipeline.Reranker
	tok   *tokenizer.Tokenizer // for counting: no truncation, no padding
	limit int
}

func (a *rerankAdapter) PairTokens(query, text string) (int, error) {
	enc, err := a.tok.EncodePair(query, text, true)
	if err != nil {
		return 0, err
	}
	return len(enc.IDs), nil
}

func (a *rerankAdapter) MaxTokens() int { return a.limit }

func (a *rerankAdapter) Rerank(ctx context.Context, query string, texts []string, raw bool) ([]rank, error) {
	// TEI's scores: the sigmoid unless raw_scores, whatever activation the
	// folder was saved with.
	act := pipeline.ActivationSigmoid
	if raw {
		act = pipeline.ActivationIdentity
	}
	res, err := a.p.Rerank(ctx, query, texts, pipeline.RerankOptions{Activation: act})
	if err != nil {
		return nil, err
	}
	out := make([]rank, len(res))
	for i, r := range res {
		out[i] = rank{Index: r.Index, Score: r.Score}
	}
	return out, nil
}

// genAdapter serves completions with the text-generation pipeline's
// streaming, for both streamed and whole answers, so the two always agree.
type genAdapter struct {
	p    *pipeline.TextGeneration
	tok  *tokenizer.Tokenizer // for counting: no truncation, no padding
	base generate.Config      // generation_config.json's settings
}

func loadGenerator(ctx context.Context, dir string, opt *pipeline.Options) (*genAdapter, error) {
	p, err := pipeline.NewTextGeneration(ctx, dir, opt)
	if err != nil {
		return nil, err
	}
	return &genAdapter{p: p, tok: p.Tokenizer().WithTruncation(nil).WithPadding(nil), base: p.Config()}, nil
}

func (g *genAdapter) CountTokens(text string) (int, error) {
	enc, err := g.tok.Encode(text, true)
	if err != nil {
		return 0, err
	}
	return len(enc.IDs), nil
}

func (g *genAdapter) MaxTokens() int { return g.p.Model().Info().MaxPositions }

// watchDecoder passes decoding through and remembers the last ids it saw:
// generate.Stream decodes all generated ids after every step, so the last
// call holds the whole completion, which gives the token count and the
// finish reason.
type watchDecoder struct {
	tok  *tokenizer.Tokenizer
	last []int
}

func (d *watchDecoder) Decode(ids []int, skip bool) (string, error) {
	if len(ids) >= len(d.last) {
		d.last = append(d.last[:0], ids...)
	}
	return d.tok.Decode(ids, skip)
}

func (g *genAdapter) Generate(ctx context.Context, prompt string, p genParams, emit func(string) error) (genResult, error) {
	promptTokens, err := g.CountTokens(prompt)
	if err != nil {
		return genResult{}, err
	}
	if promptTokens == 0 {
		return genResult{}, badRequest("prompt", "prompt has no tokens")
	}
	return g.run(ctx, promptTokens, p, emit, func(cfg *generate.Config) iter.Seq2[string, error] {
		return g.p.Stream(ctx, prompt, cfg)
	})
}

// ChatTokens renders messages with the folder's chat template (and the
// generation prompt) and counts the rendering's tokens. Rendering and
// tokenizing errors are the request's: a template can refuse a
// conversation (roles that do not alternate, ...).
func (g *genAdapter) ChatTokens(messages []chat.Message) (int, error) {
	_, ids, err := g.p.ChatPrompt(messages, nil)
	if err != nil {
		return 0, badRequest("messages", "%v", err)
	}
	return len(ids), nil
}

func (g *genAdapter) Chat(ctx context.Context, messages []chat.Message, p genParams, emit func(string) error) (genResult, error) {
	promptTokens, err := g.ChatTokens(messages)
	if err != nil {
		return genResult{}, err
	}
	return g.run(ctx, promptTokens, p, emit, func(cfg *generate.Config) iter.Seq2[string, error] {
		return g.p.StreamChat(ctx, messages, nil, cfg)
	})
}

// run generates with the request's settings over generation_config.json's,
// streaming each piece to emit.
func (g *genAdapter) run(ctx context.Context, promptTokens int, p genParams, emit func(string) error, stream func(*generate.Config) iter.Seq2[string, error]) (genResult, error) {
	dec := &watchDecoder{tok: g.p.Tokenizer()}
	cfg := g.base
	cfg.MaxNewTokens = p.MaxTokens
	cfg.DoSample = p.Temperature > 0
	cfg.Temperature = p.Temperature
	if !cfg.DoSample {
		cfg.Temperature = 1
	}
	cfg.TopP = p.TopP
	cfg.TopK = 0 // OpenAI sampling has no top-k
	cfg.Seed = p.Seed
	cfg.StopStrings = p.Stop
	cfg.Decoder = dec
	if err := cfg.Validate(); err != nil {
		return genResult{}, badRequest("", "%v", err)
	}
	res := genResult{PromptTokens: promptTokens}
	var text strings.Builder
	// On every return the tokens generated so far are counted, so the
	// metrics see the work a stream did for a client that then left.
	for piece, err := range stream(&cfg) {
		if err != nil {
			res.CompletionTokens = len(dec.last)
			return res, err
		}
		text.WriteString(piece)
		if err := emit(piece); err != nil {
			res.CompletionTokens = len(dec.last)
			return res, err
		}
	}
	res.CompletionTokens = len(dec.last)
	if err := ctx.Err(); err != nil {
		return res, err
	}
	res.FinishReason = "length"
	full, _ := dec.tok.Decode(dec.last, true)
	stopped := len(dec.last) > 0 && slices.Contains(cfg.EOSTokenIDs, dec.last[len(dec.last)-1])
	if stopped || len(full) > text.Len() || len(dec.last) < p.MaxTokens {
		res.FinishReason = "stop"
	}
	return res, nil
}
