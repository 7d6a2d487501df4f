package serve

import (
	"context"

	"github.com/embrace-go/embrace/chat"
)

// backend is the one model a server serves, described by what its folder can do.
// A nil capability means the folder does not support it and the matching
// endpoints answer 404 with a message saying so.
type backend struct {
	// ID names the model in /v1/models and in responses: the folder or repo id
	// given to -model.
	ID string
	// Tokens counts tokens for input limits; nil when the model has no
	// encoder-style inputs (the generator counts its own).
	Tokens tokenCounter
	// ChatTemplate is tokenizer_config.json's chat_template ("" when absent).
	ChatTemplate string

	Embedder   embedder
	Generator  generator
	Classifier classifier
	Tagger     tagger
	Answerer   answerer
	MaskFiller maskFiller
	Reranker   reranker

	// Close releases the model's resources (mapped weights); may be nil.
	Close func() error
}

// capabilities lists the endpoints a model answers, for the startup log.
func (m *backend) capabilities() []string {
	var c []string
	if m.Embedder != nil {
		c = append(c, "embeddings")
	}
	if m.Generator != nil {
		c = append(c, "completions")
	}
	if m.Classifier != nil {
		c = append(c, "classify")
	}
	if m.Tagger != nil {
		c = append(c, "ner")
	}
	if m.Answerer != nil {
		c = append(c, "qa")
	}
	if m.MaskFiller != nil {
		c = append(c, "fill-mask")
	}
	if m.Reranker != nil {
		c = append(c, "rerank")
	}
	return c
}

// tokenCounter reports input sizes so that limits can be checked before any
// model work is queued.
type tokenCounter interface {
	// CountTokens is the number of tokens text becomes, special tokens
	// included, before any truncation.
	CountTokens(text string) (int, error)
	// MaxTokens is the longest input the model accepts.
	MaxTokens() int
}

// embedder turns texts into sentence embeddings. Implementations must be safe
// for concurrent use.
type embedder interface {
	// Dim is the width of every embedding.
	Dim() int
	// Normalized reports whether Embed's vectors are already L2-normalised
	// (a sentence-transformers Normalize module), so that truncated
	// dimensions are renormalised like the model would.
	Normalized() bool
	// Embed returns one vector per text, in order; texts longer than the
	// model's maximum are truncated (the server checks limits beforehand).
	Embed(ctx context.Context, texts []string) ([][]float32, error)
}

// genParams are the sampling settings of one completion.
type genParams struct {
	MaxTokens   int
	Temperature float64 // 0 means greedy
	TopP        float64 // 1 means off
	Seed        uint64
	Stop        []string
}

// genResult describes a finished completion.
type genResult struct {
	PromptTokens     int
	CompletionTokens int
	// FinishReason is "stop" (end of text or a stop string) or "length".
	FinishReason string
}

// generator continues prompts. Implementations must be safe for concurrent use.
type generator interface {
	tokenCounter
	// Generate calls emit with each new piece of text as it is decoded (never a
	// broken UTF-8 sequence) and stops early when emit returns an error or ctx
	// ends.
	Generate(ctx context.Context, prompt string, p genParams, emit func(piece string) error) (genResult, error)
	// ChatTokens renders a conversation with the model's chat template and
	// counts the prompt's tokens; an error is the request's (400).
	ChatTokens(messages []chat.Message) (int, error)
	// Chat is Generate for a conversation rendered with the chat template.
	Chat(ctx context.Context, messages []chat.Message, p genParams, emit func(piece string) error) (genResult, error)
}

// label is one class and its score.
type label struct {
	Label string  `json:"label"`
	Score float64 `json:"score"`
}

// classifier scores texts against the model's labels.
type classifier interface {
	// Classify returns, per text, the topK labels by score (all when topK <= 0).
	Classify(ctx context.Context, texts []string, topK int) ([][]label, error)
}

// entity is one tagged token or group of tokens. Start and End are code-point
// offsets into the input, as Hugging Face pipelines report them.
type entity struct {
	Entity      string  `json:"entity,omitempty"`
	EntityGroup string  `json:"entity_group,omitempty"`
	Score       float64 `json:"score"`
	Word        string  `json:"word"`
	Start       int     `json:"start"`
	End         int     `json:"end"`
	Index       *int    `json:"index,omitempty"`
}

// tagger finds named entities.
type tagger interface {
	// Tag returns the entities of each text; aggregation is one of none,
	// simple, first, average, max.
	Tag(ctx context.Context, texts []string, aggregation string) ([][]entity, error)
}

// answer is one extracted span; Start and End are code-point offsets into the
// context.
type answer struct {
	Answer string  `json:"answer"`
	Score  float64 `json:"score"`
	Start  int     `json:"start"`
	End    int     `json:"end"`
}

// answerer does extractive question answering.
type answerer interface {
	Answer(ctx context.Context, question, context string, topK, maxAnswerLen int) ([]answer, error)
}

// maskFill is one candidate for a mask token.
type maskFill struct {
	Score    float64 `json:"score"`
	Token    int     `json:"token"`
	TokenStr string  `json:"token_str"`
	Sequence string  `json:"sequence"`
}

// maskFiller predicts masked tokens.
type maskFiller interface {
	// MaskToken is the literal mask token users write, e.g. "[MASK]".
	MaskToken() string
	// Fill returns, per text, the topK candidates for its mask (restricted to
	// targets when given).
	Fill(ctx context.Context, texts []string, topK int, targets []string) ([][]maskFill, error)
}

// rank is one text's relevance to a query.
type rank struct {
	Index int     `json:"index"`
	Score float64 `json:"score"`
	Text  *string `json:"text,omitempty"`
}

// reranker scores texts against a query with a cross-encoder.
type reranker interface {
	// PairTokens is the number of tokens the (query, text) pair becomes,
	// special tokens included, before any truncation.
	PairTokens(query, text string) (int, error)
	// MaxTokens is the longest pair the model takes; longer pairs are
	// truncated longest_first by Rerank.
	MaxTokens() int
	// Rerank returns one rank per text, highest score first (equal scores
	// in input order); the score is the sigmoid of the logit, or the logit
	// itself when raw.
	Rerank(ctx context.Context, query string, texts []string, raw bool) ([]rank, error)
}
