package generate

import (
	"context"
	"errors"
	"fmt"
	"github.com/embrace-go/embrace/models/arch"
	"slices"
	"strings"
)

// ErrTooLong is wrapped by the error for a prompt that fills the model's
// context (it is arch.ErrTooLong).
var ErrTooLong = arch.ErrTooLong

// errStop ends the decoding loop early without an error.
var errStop = errors.New("stop")

// stepFunc sees the rows after each step (prompt, padding and generated
// tokens) and which of them finished; it may return errStop.
type stepFunc func(rows [][]int, finished []bool) error

// maxNew is the number of tokens to generate after a prompt of seq
// positions (padding included, as max_length counts it); -1 when the
// config sets no bound.
func (c *Config) maxNew(seq int) int {
	if c.MaxNewTokens > 0 {
		return c.MaxNewTokens
	}
	if c.MaxLength > 0 {
		return max(c.MaxLength-seq, 0)
	}
	return -1
}

// run is the decoding loop over a left-padded batch: ids and mask are B×S.
// It returns B rows of prompt followed by generated ids, and how many ids
// each row generated before it finished; the rest of a row that finished
// early is the pad id, as in transformers.
func run(ctx context.Context, m arch.CausalLM, ids, mask []int, batch int, cfg Config, onStep stepFunc) ([][]int, []int, error) {
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	cfg = cfg.normalized()
	if len(cfg.StopStrings) > 0 && cfg.Decoder == nil {
		return nil, nil, errors.New("generate: stop strings need a Decoder")
	}
	if batch <= 0 || len(ids) == 0 || len(ids)%batch != 0 {
		return nil, nil, fmt.Errorf("generate: %d ids do not form %d prompts", len(ids), batch)
	}
	if mask != nil && len(mask) != len(ids) {
		return nil, nil, fmt.Errorf("generate: attention mask has %d values for %d ids", len(mask), len(ids))
	}
	seq := len(ids) / batch
	maxNew := cfg.maxNew(seq)
	info := m.Info()
	vocab := info.VocabSize
	for i, id := range ids {
		if id < 0 || id >= vocab {
			return nil, nil, fmt.Errorf("generate: token id %d at position %d is outside the vocabulary of %d", id, i, vocab)
		}
	}
	if mp := info.MaxPositions; mp > 0 {
		// Generation stops at the context limit (finish reason "length")
		// rather than failing when max_new_tokens would pass it.
		for b := 0; b < batch; b++ {
			real := seq
			if mask != nil {
				real = 0
				for _, v := range mask[b*seq : (b+1)*seq] {
					real += min(v, 1)
				}
			}
			if real >= mp {
				return nil, nil, fmt.Errorf("generate: prompt %d has %d tokens, which leaves no room in the model's %d positions: %w", b, real, mp, ErrTooLong)
			}
			if maxNew < 0 || maxNew > mp-real {
				maxNew = mp - real
			}
		}
	}
	if maxNew < 0 {
		return nil, nil, errors.New("generate: the model has no position limit, so MaxNewTokens or MaxLength must be set")
	}
	rows := make([][]int, batch)
	for b := range rows {
		rows[b] = make([]int, seq, seq+maxNew)
		copy(rows[b], ids[b*seq:(b+1)*seq])
	}
	lens := make([]int, batch)
	if maxNew == 0 {
		return rows, lens, nil
	}
	cache, err := m.NewCache(batch, seq+maxNew)
	if err != nil {
		return nil, nil, err
	}
	out, err := m.Forward(ctx, cache, &arch.DecoderInput{IDs: ids, Mask: mask})
	if err != nil {
		return nil, nil, err
	}
	logits := out.Logits
	step1 := &arch.DecoderInput{}
	ch := newChooser(&cfg, vocab)
	pad := cfg.pad()
	finished := make([]bool, batch)
	next := make([]int, batch)
	for step := 0; ; step++ {
		if err := ctx.Err(); err != nil {
			return rows, lens, err
		}
		for b := 0; b < batch; b++ {
			if finished[b] {
				next[b] = pad
				continue
			}
			t, err := ch.next(logits[b*vocab:(b+1)*vocab], rows[b], step)
			if err != nil {
				return rows, lens, err
			}
			next[b] = t
			lens[b]++
			if slices.Contains(cfg.EOSTokenIDs, t) {
				finished[b] = true
			}
		}
		for b := range rows {
			rows[b] = append(rows[b], next[b])
		}
		if len(cfg.StopStrings) > 0 {
			for b := range rows {
				if finished[b] {
					continue
				}
				text, err := cfg.Decoder.Decode(rows[b][seq:], true)
				if err != nil {
					return rows, lens, fmt.Errorf("generate: decoding: %w", err)
				}
				if _, found := findStop(text, cfg.StopStrings); found {
					finished[b] = true
				}
			}
		}
		if onStep != nil {
			if err := onStep(rows, finished); err != nil {
				if errors.Is(err, errStop) {
					return rows, lens, nil
				}
				return rows, lens, err
			}
		}
		if !slices.Contains(finished, false) || step+1 == maxNew {
			return rows, lens, nil
		}
		step1.IDs = next
		if out, err = m.Forward(ctx, cache, step1); err != nil {
			return rows, lens, err
		}
		logits = out.Logits
	}
}

// findStop returns where the earliest stop string starts in text.
func findStop(text string, stops []string) (at int, found bool) {
	at = len(text)
	for _, s := range stops {
		if i := strings.Index(text, s); i >= 0 && i < at {
			at, found = i, true
		}
	}
	return at, found
}

// GeneratePadded runs generation on a batch already left-padded the way
// transformers expects it (ids and mask B×S row-major, mask nil for none)
// and returns B rows of the input ids followed by the generated ids, all of
// the same length: a row that ends early is filled with the pad id. This is
// transformers' generate(input_ids, attention_mask=...).
func GeneratePadded(ctx context.Context, m arch.CausalLM, ids, mask []int, batch int, cfg Config) ([][]int, error) {
	rows, _, err := run(ctx, m, ids, mask, batch, cfg, nil)
	return rows, err
}

// Generate continues each prompt (unpadded token ids; prompts may differ in
// length) and returns the generated ids of each, without the prompt and
// without the padding after an end token. Prompts of different lengths are
// left-padded into one batch with the pad id and an attention mask, which
// gives the same tokens as generating each alone (up to float rounding);
// repetition penalty and no-repeat n-grams see the padding, as in
// transformers.
func Generate(ctx context.Context, m arch.CausalLM, prompts [][]int, cfg Config) ([][]int, error) {
	if len(prompts) == 0 {
		return nil, nil
	}
	seq := 0
	for i, p := range prompts {
		if len(p) == 0 {
			return nil, fmt.Errorf("generate: prompt %d is empty", i)
		}
		seq = max(seq, len(p))
	}
	b := len(prompts)
	ids := make([]int, b*seq)
	var mask []int
	pad := cfg.pad()
	for i, p := range prompts {
		off := seq - len(p)
		if off > 0 && mask == nil {
			mask = make([]int, b*seq)
			for j := 0; j < i*seq; j++ {
				mask[j] = 1
			}
		}
		for j := 0; j < seq; j++ {
			if j < off {
				ids[i*seq+j] = pad
			} else {
				ids[i*seq+j] = p[j-off]
				if mask != nil {
					mask[i*seq+j] = 1
				}
			}
		}
	}
	rows, lens, err := run(ctx, m, ids, mask, b, cfg, nil)
	if err != nil {
		return nil, err
	}
	out := make([][]int, b)
	for i, r := range rows {
		out[i] = slices.Clip(r[seq : seq+lens[i]])
	}
	return out, nil
}
