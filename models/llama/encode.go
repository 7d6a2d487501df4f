package llama

import (
	"context"
	"fmt"

	"github.com/embrace-go/embrace/models/arch"
	"github.com/embrace-go/embrace/tensor"
)

// Encode runs a base model over a batch in one causal pass: LastHiddenState
// is [B, S, D] after the final norm (what Qwen3-Embedding's last-token
// pooling reads); HiddenStates, when asked, holds the embeddings, each
// layer's output and, last, the final normed states. Padding may be on
// either side; outputs at padded positions carry no meaning.
func (b *Base) Encode(ctx context.Context, in *arch.EncoderInput, opt arch.EncodeOptions) (*arch.EncoderOutput, error) {
	return b.m.encode(ctx, in, opt)
}

// Encode runs the model over a batch in one pass and returns, besides the
// hidden states (as Base.Encode), the logits of every position [B, S, V].
func (c *CausalLM) Encode(ctx context.Context, in *arch.EncoderInput, opt arch.EncodeOptions) (*arch.EncoderOutput, error) {
	return c.m.encode(ctx, in, opt)
}

func (m *model) encode(ctx context.Context, in *arch.EncoderInput, opt arch.EncodeOptions) (*arch.EncoderOutput, error) {
	if err := m.enter(); err != nil {
		return nil, err
	}
	defer m.leave()
	if in == nil {
		return nil, fmt.Errorf("llama: encode: nil input")
	}
	bs, s := in.Batch, in.Seq
	if bs <= 0 || s <= 0 || len(in.InputIDs) != bs*s {
		return nil, fmt.Errorf("llama: encode: %d ids for a batch of %d × %d", len(in.InputIDs), bs, s)
	}
	if in.AttentionMask != nil && len(in.AttentionMask) != bs*s {
		return nil, fmt.Errorf("llama: encode: attention mask has %d values for a batch of %d × %d", len(in.AttentionMask), bs, s)
	}
	c, err := m.newCache(bs, s, CacheOptions{PageSize: min(s, 256)})
	if err != nil {
		return nil, err
	}
	dec := &arch.DecoderInput{IDs: in.InputIDs, Mask: in.AttentionMask, Logits: arch.NoLogits, Hidden: true}
	if m.head != nil {
		dec.Logits = arch.AllPositions
	}
	var hs [][]float32
	var hp *[][]float32
	if opt.HiddenStates {
		hp = &hs
	}
	res, err := m.forward(ctx, c, dec, hp)
	if err != nil {
		return nil, err
	}
	d := m.cfg.HiddenSize
	out := &arch.EncoderOutput{
		LastHiddenState: tensor.FromFloat32(append([]float32(nil), res.Hidden...), bs, s, d),
	}
	if res.Logits != nil {
		out.Logits = tensor.FromFloat32(append([]float32(nil), res.Logits...), bs, s, m.cfg.VocabSize)
	}
	for _, h := range hs {
		out.HiddenStates = append(out.HiddenStates, tensor.FromFloat32(h, bs, s, d))
	}
	return out, nil
}
