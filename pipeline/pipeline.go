// Package pipeline answers the questions people load encoder checkpoints for,
// the way Hugging Face pipelines do: text in, labels, entities, answers,
// filled masks and sentence embeddings out. Each pipeline is built from a
// local folder (or a Hub repo id), tokenizes with the folder's tokenizer,
// runs its inputs through the model in batches, and is safe for concurrent
// use by many goroutines.
//
// Offsets are byte offsets into the input string (Start, End), with the same
// offsets in Unicode code points (StartRune, EndRune), which is how Hugging
// Face reports them.
//
// Long inputs follow one policy everywhere (Options.Truncation): by default
// an input longer than the model accepts is cut to its first tokens, as
// sentence-transformers does; with TruncateOff it is an error wrapping
// ErrTooLong. Each batch method has a ...WithInfo twin (ClassifyWithInfo,
// EmbedWithInfo, AnswerWithInfo, ...) that also returns one InputInfo per
// input saying whether it was cut; the reranker marks cut pairs in
// RerankResult.Truncated. Question answering (QAOptions.DocStride) and
// token classification (TokenOptions.Stride) can instead run a long input
// as overlapping windows and merge their results, as Hugging Face's
// pipelines do.
package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/embrace-go/embrace/models/arch"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/embrace-go/embrace/hfdir"
	"github.com/embrace-go/embrace/hub"
	"github.com/embrace-go/embrace/models"
	"github.com/embrace-go/embrace/tokenizer"
)

// Options configure any pipeline.
type Options struct {
	// BatchSize is how many inputs go through the model at once (default 8).
	BatchSize int
	// Truncation is the length policy for inputs longer than the model
	// accepts. The zero value truncates, as sentence-transformers and
	// Hugging Face's token-classification pipeline do; TruncateOff makes
	// such inputs fail with an error wrapping ErrTooLong. The ...WithInfo
	// methods report, per input, whether it was cut. Question answering and
	// token classification with a Stride split long inputs into windows
	// instead of cutting them.
	Truncation Truncation
	// Hub fetches Hub repo ids: its Token, CacheDir, Offline, Endpoint and
	// Progress fields configure the download. Nil means hub.NewClient(),
	// configured from the HF_* environment variables.
	Hub *hub.Client
	// Revision is the branch, tag or commit of a Hub repo id (default
	// "main"); a name of the form "org/name@revision" sets it too.
	Revision string
	// Load are the model's load options: reduced precision (q8 weights,
	// BF16 compute) and Threads, the bound on the goroutines one call runs
	// on, which also bounds the pipeline's batch tokenization. The zero
	// value keeps the stored weights in float32 arithmetic on every
	// processor.
	Load arch.LoadOptions
}

// threads is opt's Load.Threads (0 for nil).
func (o *Options) threads() int {
	if o == nil {
		return 0
	}
	return o.Load.Threads
}

// load returns the model load options of opt.
func (o *Options) load() *arch.LoadOptions {
	if o == nil {
		return nil
	}
	return &o.Load
}

// Truncation is a length policy: what a pipeline does with an input longer
// than the model accepts.
type Truncation int

// The length policies. Inputs are cut to the smaller of the model's
// positions and the tokenizer's model_max_length (the sentence-embedding
// pipeline: to max_seq_length), keeping their beginning; a folder's
// tokenizer.json truncation applies when it is shorter.
const (
	// TruncateDefault is the zero value: truncate.
	TruncateDefault Truncation = iota
	// TruncateOn cuts long inputs and reports it (InputInfo.Truncated).
	TruncateOn
	// TruncateOff never cuts: an input longer than the model's positions
	// is an error wrapping ErrTooLong.
	TruncateOff
)

// String names the policy.
func (t Truncation) String() string {
	switch t {
	case TruncateDefault:
		return "default (on)"
	case TruncateOn:
		return "on"
	case TruncateOff:
		return "off"
	}
	return fmt.Sprintf("Truncation(%d)", int(t))
}

// InputInfo reports how one input was fitted to the model. Every pipeline
// method that takes a batch has a ...WithInfo twin returning one InputInfo
// per input, in input order, next to the usual results
// (ZeroShotClassifier.ClassifyWithInfo, which takes one sequence, returns
// one; the reranker, whose results are structs it reorders, sets
// RerankResult.Truncated instead).
type InputInfo struct {
	// Truncated is true when tokens of the input were cut off and never
	// reached the model (Options.Truncation on; for question answering,
	// the question cut to QAOptions.MaxQuestionLen or to fit the window).
	Truncated bool
	// Windows is how many overlapping windows the input ran as: 1, or more
	// when a stride split it (question answering, token classification
	// with TokenOptions.Stride).
	Windows int
}

func (o *Options) truncate() (bool, error) {
	if o == nil {
		return true, nil
	}
	switch o.Truncation {
	case TruncateDefault, TruncateOn:
		return true, nil
	case TruncateOff:
		return false, nil
	}
	return false, fmt.Errorf("pipeline: unknown truncation policy %v", o.Truncation)
}

func (o *Options) batch() int {
	if o == nil || o.BatchSize <= 0 {
		return 8
	}
	return o.BatchSize
}

// resolve turns a folder or a Hub repo id ("org/name", optionally
// "@revision") into a local folder, downloading the snapshot when needed.
func resolve(ctx context.Context, nameOrDir string, opt *Options) (string, error) {
	if opt == nil || (opt.Hub == nil && opt.Revision == "") {
		dir, err := hub.Resolve(ctx, nameOrDir)
		if err != nil {
			return "", fmt.Errorf("pipeline: %w", err)
		}
		return dir, nil
	}
	if st, err := os.Stat(nameOrDir); err == nil && st.IsDir() {
		return nameOrDir, nil
	}
	repo, rev, _ := strings.Cut(nameOrDir, "@")
	if opt.Revision != "" {
		rev = opt.Revision
	}
	if !hub.IsRepoID(repo) {
		return "", fmt.Errorf("pipeline: %q is neither an existing folder nor a Hub repository id: %w", nameOrDir, hub.ErrNotFound)
	}
	c := opt.Hub
	if c == nil {
		c = hub.NewClient()
	}
	dir, err := c.Snapshot(ctx, repo, rev)
	if err != nil {
		return "", fmt.Errorf("pipeline: %w", err)
	}
	return dir, nil
}

// encoder is what every encoder pipeline holds: the folder's tokenizer and
// model.
type encoder struct {
	dir   string
	tok   *tokenizer.Tokenizer
	model arch.Encoder
	info  arch.Info
	meta  *hfdir.Folder
	batch int
	// tokInfo is what the pipelines need from tokenizer.json /
	// tokenizer_config.json that the tokenizer does not expose.
	subwordPrefix  string // WordPiece continuing_subword_prefix ("" for BPE)
	modelMaxLength int    // tokenizer_config.json model_max_length (0 when absent)
	decoderType    string // tokenizer.json decoder type ("WordPiece", "ByteLevel", ...)
	decoderPrefix  string // WordPiece decoder prefix
	decoderCleanup bool   // WordPiece decoder cleanup
	// truncate is the length policy (Options.Truncation); limit the
	// length inputs are cut to when it is on (0: no limit known), and
	// positions the longest input the model accepts (0: no limit).
	truncate         bool
	limit, positions int
	// untruncated is the folder's tokenizer without truncation, for the
	// pipelines that window or measure inputs themselves.
	untruncated *tokenizer.Tokenizer
}

// openEncoder loads the tokenizer and model of a folder and checks that the
// model's head is one of want.
func openEncoder(ctx context.Context, nameOrDir string, opt *Options, want ...arch.Task) (*encoder, error) {
	dir, err := resolve(ctx, nameOrDir, opt)
	if err != nil {
		return nil, err
	}
	f, err := hfdir.Read(dir)
	if err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	// The head is read from config.json before any weight is.
	task, err := models.Task(f)
	if err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	if len(want) > 0 && !slices.Contains(want, task) {
		return nil, fmt.Errorf("pipeline: %s: %w: the model is a %s model (architectures %v), this pipeline needs %v", dir, arch.ErrUnsupported, task, f.Config.Architectures, want)
	}
	m, err := models.LoadEncoder(f, opt.load())
	if err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	info := m.Info()
	tok, err := tokenizer.FromDir(dir)
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("pipeline: %s: %w", dir, err)
	}
	tok = tok.WithThreads(opt.threads())
	truncate, err := opt.truncate()
	if err != nil {
		m.Close()
		return nil, err
	}
	e := &encoder{dir: dir, tok: tok, model: m, info: info, meta: f, batch: opt.batch(), truncate: truncate}
	e.readTokenizerInfo()
	if f.Tokenizer != nil {
		e.modelMaxLength = f.Tokenizer.ModelMaxLength
	}
	e.positions = max(info.MaxPositions, 0)
	e.limit = e.positions
	if e.modelMaxLength > 0 && (e.limit == 0 || e.modelMaxLength < e.limit) {
		e.limit = e.modelMaxLength
	}
	e.untruncated = tok.WithTruncation(nil)
	switch {
	case !truncate:
		e.tok = e.untruncated
	case tok.Truncation() != nil:
		// The folder's own truncation is part of its tokenizer: keep it,
		// no longer than the model accepts.
		p := tok.Truncation()
		if e.limit > 0 && (p.MaxLength == 0 || p.MaxLength > e.limit) {
			p.MaxLength = e.limit
		}
		e.tok = tok.WithTruncation(p)
	case e.limit > 0:
		e.tok = tok.WithTruncation(&tokenizer.TruncationParams{MaxLength: e.limit, Strategy: tokenizer.TruncateLongestFirst})
	}
	return e, nil
}

// realTokens counts the tokens of enc that are not padding.
func realTokens(enc *tokenizer.Encoding) int {
	if enc.AttentionMask == nil {
		return len(enc.IDs)
	}
	n := 0
	for _, m := range enc.AttentionMask {
		n += m
	}
	return n
}

// fit checks one encoded input against the length policy: with truncation
// off, an input longer than the model's positions is an error wrapping
// ErrTooLong. It reports whether truncation cut the input.
func (e *encoder) fit(what string, i int, enc *tokenizer.Encoding) (InputInfo, error) {
	if !e.truncate && e.positions > 0 {
		if n := realTokens(enc); n > e.positions {
			return InputInfo{}, fmt.Errorf("pipeline: %s %d has %d tokens, more than the model's %d positions, and truncation is off: %w", what, i, n, e.positions, ErrTooLong)
		}
	}
	return InputInfo{Truncated: len(enc.Overflowing) > 0, Windows: 1}, nil
}

// encodeText tokenizes text i for a pipeline that runs one window per
// input, applying the length policy.
func (e *encoder) encodeText(tok *tokenizer.Tokenizer, i int, text string) (*tokenizer.Encoding, InputInfo, error) {
	enc, err := tok.Encode(text, true)
	if err != nil {
		return nil, InputInfo{}, fmt.Errorf("pipeline: text %d: %w", i, err)
	}
	info, err := e.fit("text", i, enc)
	return enc, info, err
}

// readTokenizerInfo reads the few tokenizer settings pipelines depend on.
// Errors are ignored: the tokenizer itself has already validated the files.
func (e *encoder) readTokenizerInfo() {
	var tj struct {
		Model struct {
			Type   string  `json:"type"`
			Prefix *string `json:"continuing_subword_prefix"`
		} `json:"model"`
		Decoder struct {
			Type    string `json:"type"`
			Prefix  string `json:"prefix"`
			Cleanup *bool  `json:"cleanup"`
		} `json:"decoder"`
	}
	if data, err := os.ReadFile(filepath.Join(e.dir, "tokenizer.json")); err == nil {
		if json.Unmarshal(data, &tj) == nil && tj.Model.Prefix != nil {
			e.subwordPrefix = *tj.Model.Prefix
		}
		e.decoderType, e.decoderPrefix = tj.Decoder.Type, tj.Decoder.Prefix
		e.decoderCleanup = tj.Decoder.Cleanup == nil || *tj.Decoder.Cleanup
	} else if _, err := os.Stat(filepath.Join(e.dir, "vocab.txt")); err == nil {
		// Legacy BertTokenizer files are WordPiece.
		e.subwordPrefix, e.decoderType, e.decoderPrefix, e.decoderCleanup = "##", "WordPiece", "##", true
	} else if _, err := os.Stat(filepath.Join(e.dir, "merges.txt")); err == nil {
		e.decoderType = "ByteLevel"
	}
}

// Close releases the model's memory mapping.
func (e *encoder) Close() error { return e.model.Close() }

// forward pads encodings to the longest (on the right), runs the model and
// returns its output together with the padded input.
func (e *encoder) forward(ctx context.Context, encs []*tokenizer.Encoding) (*arch.EncoderOutput, *arch.EncoderInput, error) {
	seq := 0
	for _, enc := range encs {
		seq = max(seq, len(enc.IDs))
	}
	if seq == 0 {
		return nil, nil, errors.New("pipeline: empty input after tokenization")
	}
	b := len(encs)
	in := &arch.EncoderInput{Batch: b, Seq: seq, InputIDs: make([]int, b*seq), AttentionMask: make([]int, b*seq), TokenTypeIDs: make([]int, b*seq)}
	pad := e.info.PadTokenID
	for i, enc := range encs {
		for j := 0; j < seq; j++ {
			k := i*seq + j
			if j < len(enc.IDs) {
				in.InputIDs[k] = enc.IDs[j]
				in.AttentionMask[k] = 1
				if enc.AttentionMask != nil && enc.AttentionMask[j] == 0 {
					in.AttentionMask[k] = 0
				}
				if j < len(enc.TypeIDs) {
					in.TokenTypeIDs[k] = enc.TypeIDs[j]
				}
			} else {
				in.InputIDs[k] = pad
			}
		}
	}
	out, err := e.model.Encode(ctx, in, arch.EncodeOptions{})
	if err != nil {
		return nil, nil, err
	}
	return out, in, nil
}

// chunks calls fn on consecutive slices of at most n indexes of [0, total).
func chunks(ctx context.Context, total, n int, fn func(lo, hi int) error) error {
	for lo := 0; lo < total; lo += n {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(lo, min(lo+n, total)); err != nil {
			return err
		}
	}
	return nil
}

// softmax64 returns the softmax of xs computed in float64.
func softmax64(xs []float32) []float64 {
	out := make([]float64, len(xs))
	mx := math.Inf(-1)
	for _, v := range xs {
		mx = max(mx, float64(v))
	}
	var sum float64
	for i, v := range xs {
		out[i] = math.Exp(float64(v) - mx)
		sum += out[i]
	}
	for i := range out {
		out[i] /= sum
	}
	return out
}

func argmax(xs []float64) int {
	best := 0
	for i, v := range xs {
		if v > xs[best] {
			best = i
		}
	}
	return best
}

// runeIndex converts a byte offset in s to a code-point offset.
func runeIndex(s string, byteOff int) int {
	if byteOff > len(s) {
		byteOff = len(s)
	}
	return utf8.RuneCountInString(s[:max(byteOff, 0)])
}

// joinTokens joins tokens as the WordPiece decoder does: a token with the
// prefix glues to the one before, others get a space; cleanup then removes
// the space before punctuation and contractions.
func (e *encoder) joinTokens(toks []string) string {
	var b strings.Builder
	for i, t := range toks {
		if i > 0 {
			if rest, ok := strings.CutPrefix(t, e.decoderPrefix); ok && e.decoderPrefix != "" {
				t = rest
			} else {
				t = " " + t
			}
		}
		if e.decoderCleanup {
			t = cleanupReplacer.Replace(t)
		}
		b.WriteString(t)
	}
	return b.String()
}

// cleanupReplacer is the tokenizers decoders' clean-up of tokenization
// spaces.
var cleanupReplacer = strings.NewReplacer(" .", ".", " ?", "?", " !", "!", " ,", ",", " ' ", "'", " n't", "n't",
	" 'm", "'m", " do not", " don't", " 's", "'s", " 've", "'ve", " 're", "'re")
