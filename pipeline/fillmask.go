package pipeline

import (
	"context"
	"fmt"
	"github.com/embrace-go/embrace/models/arch"
	"sort"

	"github.com/embrace-go/embrace/tokenizer"
)

// FillMask is the fill-mask pipeline: it predicts the tokens hidden behind
// the tokenizer's mask token, for checkpoints saved as *ForMaskedLM (or
// BertForPreTraining).
type FillMask struct {
	enc  *encoder
	mask int
}

// MaskPrediction is one candidate for a masked position.
type MaskPrediction struct {
	Score    float64
	Token    int    // token id
	TokenStr string // the token decoded on its own
	Sequence string // the input with the mask replaced, decoded
}

// FillMaskOptions tune FillMask.Fill.
type FillMaskOptions struct {
	// TopK is how many candidates to return per mask (default 5).
	TopK int
	// Targets, when set, restricts candidates to these words. A word that is
	// not a single vocabulary token is replaced by its first token, as
	// Hugging Face does.
	Targets []string
}

// NewFillMask loads a masked-LM checkpoint from a folder or Hub repo id.
func NewFillMask(ctx context.Context, nameOrDir string, opt *Options) (*FillMask, error) {
	e, err := openEncoder(ctx, nameOrDir, opt, arch.TaskMaskedLM, arch.TaskPreTraining)
	if err != nil {
		return nil, err
	}
	mask := e.tok.SpecialTokens().Mask
	if mask.ID < 0 {
		e.Close()
		return nil, fmt.Errorf("pipeline: %s: the tokenizer has no mask token", e.dir)
	}
	return &FillMask{enc: e, mask: mask.ID}, nil
}

// Close releases the model.
func (f *FillMask) Close() error { return f.enc.Close() }

// MaskToken returns the text of the mask token to put in inputs.
func (f *FillMask) MaskToken() string { return f.enc.tok.SpecialTokens().Mask.Token }

// targetIDs maps target words to token ids.
func (f *FillMask) targetIDs(targets []string) ([]int, error) {
	var ids []int
	seen := map[int]bool{}
	for _, t := range targets {
		id, ok := f.enc.tok.TokenToID(t)
		if !ok {
			enc, err := f.enc.tok.Encode(t, false)
			if err != nil {
				return nil, fmt.Errorf("pipeline: target %q: %w", t, err)
			}
			if len(enc.IDs) == 0 {
				return nil, fmt.Errorf("pipeline: target %q gives no token", t)
			}
			id = enc.IDs[0]
		}
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	if len(targets) > 0 && len(ids) == 0 {
		return nil, fmt.Errorf("pipeline: no usable targets")
	}
	return ids, nil
}

// FillResult is what Fill predicts for one text: one MaskResult per mask
// token, in the order they occur.
type FillResult struct {
	Masks []MaskResult
}

// MaskResult holds the candidates for one mask token, best first.
type MaskResult struct {
	// Position is the mask's index among the text's tokens.
	Position    int
	Predictions []MaskPrediction
}

// Fill predicts every mask of every text: one FillResult per text. A text
// without a mask token (after truncation) is an error.
func (f *FillMask) Fill(ctx context.Context, texts []string, opt FillMaskOptions) ([]FillResult, error) {
	out, _, err := f.FillWithInfo(ctx, texts, opt)
	return out, err
}

// FillWithInfo is Fill that also reports, per text, whether it was
// truncated.
func (f *FillMask) FillWithInfo(ctx context.Context, texts []string, opt FillMaskOptions) ([]FillResult, []InputInfo, error) {
	topK := opt.TopK
	if topK <= 0 {
		topK = 5
	}
	targets, err := f.targetIDs(opt.Targets)
	if err != nil {
		return nil, nil, err
	}
	out := make([]FillResult, len(texts))
	infos := make([]InputInfo, len(texts))
	err = chunks(ctx, len(texts), f.enc.batch, func(lo, hi int) error {
		encs := make([]*tokenizer.Encoding, 0, hi-lo)
		for i := lo; i < hi; i++ {
			enc, info, err := f.enc.encodeText(f.enc.tok, i, texts[i])
			if err != nil {
				return err
			}
			infos[i] = info
			has := false
			for _, id := range enc.IDs {
				has = has || id == f.mask
			}
			if !has {
				if info.Truncated {
					return fmt.Errorf("pipeline: text %d has no mask token %q in the %d tokens kept by truncation", i, f.MaskToken(), realTokens(enc))
				}
				return fmt.Errorf("pipeline: text %d has no mask token %q", i, f.MaskToken())
			}
			encs = append(encs, enc)
		}
		res, in, err := f.enc.forward(ctx, encs)
		if err != nil {
			return err
		}
		logits := res.Logits
		if logits == nil {
			logits = res.PredictionLogits
		}
		lg := logits.Float32s()
		v := f.enc.info.VocabSize
		for i := lo; i < hi; i++ {
			enc := encs[i-lo]
			var masks []int
			for j, id := range enc.IDs {
				if id == f.mask {
					masks = append(masks, j)
				}
			}
			for _, j := range masks {
				row := lg[((i-lo)*in.Seq+j)*v : ((i-lo)*in.Seq+j+1)*v]
				probs := softmax64(row)
				cand := targets
				if cand == nil {
					cand = make([]int, v)
					for k := range cand {
						cand[k] = k
					}
				}
				cand = append([]int(nil), cand...)
				sort.SliceStable(cand, func(a, b int) bool { return probs[cand[a]] > probs[cand[b]] })
				cand = cand[:min(topK, len(cand))]
				preds := make([]MaskPrediction, 0, len(cand))
				for _, id := range cand {
					p := MaskPrediction{Score: probs[id], Token: id}
					if p.TokenStr, err = f.enc.tok.Decode([]int{id}, false); err != nil {
						return err
					}
					seq := append([]int(nil), enc.IDs...)
					seq[j] = id
					// One mask: decode without special tokens; several:
					// keep them, as Hugging Face does.
					if p.Sequence, err = f.enc.tok.Decode(seq, len(masks) == 1); err != nil {
						return err
					}
					preds = append(preds, p)
				}
				out[i].Masks = append(out[i].Masks, MaskResult{Position: j, Predictions: preds})
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return out, infos, nil
}
