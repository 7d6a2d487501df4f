// Package generate turns a causal language model into text generation, the
// way transformers' generate does: greedy search or sampling (temperature,
// top-k, top-p, min-p, with a seed), repetition penalty, no-repeat n-grams,
// minimum lengths, stop tokens and stop strings, left-padded batches, and a
// streaming iterator of text pieces.
//
// The model is any arch.CausalLM (every registered decoder); the tokenizer is anything with a Decode method. Logits go
// through transformers' processors in transformers' order: repetition
// penalty, no-repeat n-gram, minimum length, minimum new tokens, then (when
// sampling) temperature, top-k, top-p and min-p.
package generate

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/embrace-go/embrace/models/arch"
	"math"

	"github.com/embrace-go/embrace/hfdir"
)

// Config holds the generation parameters, with the meaning and defaults of
// transformers' GenerationConfig. Start from DefaultConfig or LoadConfig and
// change fields.
type Config struct {
	// MaxNewTokens bounds the generated tokens; 0 means MaxLength applies.
	MaxNewTokens int
	// MaxLength bounds prompt plus generated tokens, used only when
	// MaxNewTokens is 0. When both are 0, generation runs until an end
	// token, a stop string or the model's context limit (finish reason
	// "length"); transformers' legacy default of 20 applies only when a
	// generation_config.json sets max_length.
	MaxLength int
	// MinNewTokens and MinLength suppress the end-of-sequence tokens until
	// that many tokens are generated, or the sequence (prompt included) is
	// that long.
	MinNewTokens int
	MinLength    int

	// DoSample samples from the processed distribution; otherwise the most
	// likely token is taken (greedy search).
	DoSample bool
	// Temperature divides the logits when sampling (1 leaves them; 0 means
	// greedy search, as in the OpenAI API).
	Temperature float64
	// TopK keeps the k most likely tokens when sampling (0 disables; the
	// transformers default is 50).
	TopK int
	// TopP keeps the smallest set of most likely tokens whose probability
	// reaches TopP when sampling (1, or 0 in a zero Config, disables).
	TopP float64
	// MinP drops tokens less likely than MinP times the most likely one when
	// sampling (0 disables).
	MinP float64
	// Seed makes sampling reproducible: the same seed, model and inputs give
	// the same tokens.
	Seed uint64

	// RepetitionPenalty divides positive (multiplies negative) logits of
	// every token already in the sequence, prompt and padding included (1,
	// or 0 in a zero Config, disables).
	RepetitionPenalty float64
	// NoRepeatNGramSize forbids any n-gram of that size from occurring twice
	// (0 disables).
	NoRepeatNGramSize int

	// EOSTokenIDs end a sequence when generated (the token is kept).
	EOSTokenIDs []int
	// PadTokenID fills finished sequences of a batch and left-pads prompts
	// of different lengths; -1 means the first EOS token (or 0).
	PadTokenID int
	// StopStrings end a sequence when its generated text contains one; they
	// need Decoder. Token outputs keep the tokens that completed the string;
	// text outputs end just before it.
	StopStrings []string
	// Decoder turns token ids into text for stop strings and streaming.
	Decoder Decoder
}

// Decoder turns token ids into text; *tokenizer.Tokenizer implements it.
type Decoder interface {
	Decode(ids []int, skipSpecialTokens bool) (string, error)
}

// DefaultConfig returns transformers' GenerationConfig defaults: greedy,
// top_k 50 and temperature 1 for when sampling is switched on, no
// penalties, no end token; but no length bound other than the model's
// context (transformers' legacy max_length 20 is not inherited).
//
// A zero Config is usable too: Config{MaxNewTokens: 5} is greedy search for
// 5 tokens (zero TopP and RepetitionPenalty mean disabled).
func DefaultConfig() Config {
	return Config{
		Temperature:       1,
		TopK:              50,
		TopP:              1,
		RepetitionPenalty: 1,
		PadTokenID:        -1,
	}
}

// fileConfig is generation_config.json; eos_token_id and stop_strings may
// be a single value or a list.
type fileConfig struct {
	MaxNewTokens      *int            `json:"max_new_tokens"`
	MaxLength         *int            `json:"max_length"`
	MinNewTokens      *int            `json:"min_new_tokens"`
	MinLength         *int            `json:"min_length"`
	DoSample          *bool           `json:"do_sample"`
	Temperature       *float64        `json:"temperature"`
	TopK              *int            `json:"top_k"`
	TopP              *float64        `json:"top_p"`
	MinP              *float64        `json:"min_p"`
	RepetitionPenalty *float64        `json:"repetition_penalty"`
	NoRepeatNGramSize *int            `json:"no_repeat_ngram_size"`
	EOSTokenID        json.RawMessage `json:"eos_token_id"`
	PadTokenID        *int            `json:"pad_token_id"`
	StopStrings       json.RawMessage `json:"stop_strings"`

	// Settings this package does not implement; refused unless neutral.
	NumBeams       *int            `json:"num_beams"`
	TypicalP       *float64        `json:"typical_p"`
	EpsilonCutoff  *float64        `json:"epsilon_cutoff"`
	EtaCutoff      *float64        `json:"eta_cutoff"`
	PenaltyAlpha   *float64        `json:"penalty_alpha"`
	BadWordsIDs    json.RawMessage `json:"bad_words_ids"`
	SuppressTokens json.RawMessage `json:"suppress_tokens"`
	SequenceBias   json.RawMessage `json:"sequence_bias"`
	ForcedBOS      *int            `json:"forced_bos_token_id"`
	ForcedEOS      json.RawMessage `json:"forced_eos_token_id"`
}

// unsupported names a setting of f that would change the output and that
// this package does not implement, or returns "".
func (f *fileConfig) unsupported() string {
	set := func(raw json.RawMessage) bool { return len(raw) > 0 && string(raw) != "null" && string(raw) != "[]" }
	switch {
	case f.NumBeams != nil && *f.NumBeams > 1:
		return "num_beams > 1 (beam search)"
	case f.TypicalP != nil && *f.TypicalP < 1:
		return "typical_p"
	case f.EpsilonCutoff != nil && *f.EpsilonCutoff > 0:
		return "epsilon_cutoff"
	case f.EtaCutoff != nil && *f.EtaCutoff > 0:
		return "eta_cutoff"
	case f.PenaltyAlpha != nil && *f.PenaltyAlpha > 0:
		return "penalty_alpha (contrastive search)"
	case set(f.BadWordsIDs):
		return "bad_words_ids"
	case set(f.SuppressTokens):
		return "suppress_tokens"
	case set(f.SequenceBias):
		return "sequence_bias"
	case f.ForcedBOS != nil:
		return "forced_bos_token_id"
	case set(f.ForcedEOS):
		return "forced_eos_token_id"
	}
	return ""
}

// ParseConfig applies a generation_config.json (or the generation fields of
// a config.json) over DefaultConfig. where names the file in errors.
func ParseConfig(data []byte, where string) (Config, error) {
	c := DefaultConfig()
	var f fileConfig
	if err := json.Unmarshal(data, &f); err != nil {
		return c, fmt.Errorf("generate: %s: %w", where, err)
	}
	if u := f.unsupported(); u != "" {
		return c, fmt.Errorf("generate: %s: %w: %s", where, arch.ErrUnsupported, u)
	}
	setI := func(dst *int, p *int) {
		if p != nil {
			*dst = *p
		}
	}
	setF := func(dst *float64, p *float64) {
		if p != nil {
			*dst = *p
		}
	}
	setI(&c.MaxNewTokens, f.MaxNewTokens)
	setI(&c.MaxLength, f.MaxLength)
	setI(&c.MinNewTokens, f.MinNewTokens)
	setI(&c.MinLength, f.MinLength)
	if f.DoSample != nil {
		c.DoSample = *f.DoSample
	}
	setF(&c.Temperature, f.Temperature)
	setI(&c.TopK, f.TopK)
	setF(&c.TopP, f.TopP)
	setF(&c.MinP, f.MinP)
	setF(&c.RepetitionPenalty, f.RepetitionPenalty)
	setI(&c.NoRepeatNGramSize, f.NoRepeatNGramSize)
	setI(&c.PadTokenID, f.PadTokenID)
	var err error
	if c.EOSTokenIDs, err = intOrList(f.EOSTokenID); err != nil {
		return c, fmt.Errorf("generate: %s: eos_token_id: %w", where, err)
	}
	if len(f.StopStrings) > 0 && string(f.StopStrings) != "null" {
		var one string
		if json.Unmarshal(f.StopStrings, &one) == nil {
			c.StopStrings = []string{one}
		} else if err := json.Unmarshal(f.StopStrings, &c.StopStrings); err != nil {
			return c, fmt.Errorf("generate: %s: stop_strings: want a string or a list of strings", where)
		}
	}
	return c, c.Validate()
}

func intOrList(raw json.RawMessage) ([]int, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var one int
	if json.Unmarshal(raw, &one) == nil {
		return []int{one}, nil
	}
	var list []int
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, errors.New("want an integer or a list of integers")
	}
	return list, nil
}

// LoadConfig reads dir/generation_config.json over DefaultConfig; without
// one it takes eos_token_id and pad_token_id from dir/config.json, as
// transformers does.
func LoadConfig(dir string) (Config, error) {
	f, err := hfdir.Read(dir)
	if err != nil {
		return DefaultConfig(), fmt.Errorf("generate: %w", err)
	}
	return FolderConfig(f)
}

// FolderConfig is LoadConfig over a folder's metadata already read.
func FolderConfig(f *hfdir.Folder) (Config, error) {
	if g := f.Generation; g != nil {
		return ParseConfig(g.Data, g.Path)
	}
	mc, err := f.RequireConfig()
	if err != nil {
		return DefaultConfig(), fmt.Errorf("generate: %w", err)
	}
	c := DefaultConfig()
	c.EOSTokenIDs = mc.EOSTokenIDs
	if mc.PadTokenID != nil {
		c.PadTokenID = *mc.PadTokenID
	}
	return c, nil
}

// Validate reports parameters out of their range.
func (c *Config) Validate() error {
	switch {
	case c.MaxNewTokens < 0:
		return fmt.Errorf("generate: max_new_tokens %d is negative", c.MaxNewTokens)
	case c.MaxLength < 0:
		return fmt.Errorf("generate: max_length %d is negative", c.MaxLength)
	case c.MinNewTokens < 0 || c.MinLength < 0:
		return errors.New("generate: min_new_tokens and min_length must not be negative")
	case c.Temperature < 0 || math.IsNaN(c.Temperature):
		return fmt.Errorf("generate: temperature %g is negative", c.Temperature)
	case c.TopK < 0:
		return fmt.Errorf("generate: top_k %d is negative", c.TopK)
	case !(c.TopP >= 0 && c.TopP <= 1):
		return fmt.Errorf("generate: top_p %g is outside [0, 1]", c.TopP)
	case !(c.MinP >= 0 && c.MinP <= 1):
		return fmt.Errorf("generate: min_p %g is outside [0, 1]", c.MinP)
	case !(c.RepetitionPenalty >= 0):
		return fmt.Errorf("generate: repetition_penalty %g is negative", c.RepetitionPenalty)
	case c.NoRepeatNGramSize < 0:
		return fmt.Errorf("generate: no_repeat_ngram_size %d is negative", c.NoRepeatNGramSize)
	}
	for _, s := range c.StopStrings {
		if s == "" {
			return errors.New("generate: empty stop string")
		}
	}
	return nil
}

// normalized maps the zero values that mean "off" to the values the
// processors use: top_p 0 and repetition_penalty 0 disable, temperature 0
// with sampling is greedy search.
func (c Config) normalized() Config {
	if c.TopP == 0 {
		c.TopP = 1
	}
	if c.RepetitionPenalty == 0 {
		c.RepetitionPenalty = 1
	}
	if c.DoSample && c.Temperature == 0 {
		c.DoSample = false
	}
	return c
}

// pad returns the id that fills padding and finished sequences.
func (c *Config) pad() int {
	if c.PadTokenID >= 0 {
		return c.PadTokenID
	}
	if len(c.EOSTokenIDs) > 0 {
		return c.EOSTokenIDs[0]
	}
	return 0
}
