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
	// Truncate cuts texts longer than the model accepts (the smaller of its
	// positions and the tokenizer's model_max_length) instead of failing on
	// them, like truncation=True in Hugging Face pipelines. The question
	// answering and sentence-embedding pipelines always fit their inputs.
	Truncate bool
	// Hub fetches Hub repo ids: its Token, CacheDir, Offline, Endpoint and
	// Progress fields configure the download. Nil means hub.NewClient(),
	// configured from the HF_* environment variables.
	Hub *hub.Client
	// Revision is the branch, tag or commit of a Hub repo id (default
	// "main"); a name of the form "org/name@revision" sets it too.
	Revision string
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
	m, err := models.LoadEncoder(f, nil)
	if err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	info := m.Info()
	tok, err := tokenizer.FromDir(dir)
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("pipeline: %s: %w", dir, err)
	}
	e := &encoder{dir: dir, tok: tok, model: m, info: info, meta: f, batch: opt.batch()}
	e.readTokenizerInfo()
	if f.Tokenizer != nil {
		e.modelMaxLength = f.Tokenizer.ModelMaxLength
	}
	if opt != nil && opt.Truncate {
		limit := info.MaxPositions
		if e.modelMaxLength > 0 {
			limit = min(limit, e.modelMaxLength)
		}
		e.tok = tok.WithTruncation(&tokenizer.TruncationParams{MaxLength: limit, Strategy: "longest_first"})
	}
	return e, nil
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
