package mpnet

import (
	"fmt"

	"github.com/embrace-go/embrace/models/weights"
	"github.com/embrace-go/embrace/nn"
	"github.com/embrace-go/embrace/tensor"
)

// firstTokens copies the first token's row of each sequence: [B, S, D] →
// [B, D].
func firstTokens(h *tensor.Tensor) *tensor.Tensor {
	b, s, d := h.Dim(0), h.Dim(1), h.Dim(2)
	out := tensor.Zeros(b, d)
	src, dst := h.Float32s(), out.Float32s()
	for i := 0; i < b; i++ {
		copy(dst[i*d:(i+1)*d], src[i*s*d:i*s*d+d])
	}
	return out
}

// Pooler is MPNetPooler: tanh(dense(first token)).
type Pooler struct{ Dense *nn.Linear }

func loadPooler(w *weights.Loader, d int) (*Pooler, error) {
	lin, err := w.Linear("pooler.dense", d, d, true)
	if err != nil {
		return nil, err
	}
	return &Pooler{Dense: lin}, nil
}

// Forward maps hidden [B, S, D] to pooled [B, D].
func (p *Pooler) Forward(hidden *tensor.Tensor) *tensor.Tensor {
	out := p.Dense.Apply(firstTokens(hidden))
	p.Dense.Threads.Activate(tensor.Tanh, out)
	return out
}

// LMHead is MPNetLMHead: dense, exact gelu, layer_norm, then the decoder to
// the vocabulary, whose weight is the word embedding table unless the
// checkpoint has its own (tied weights), plus lm_head.bias.
type LMHead struct {
	Dense   *nn.Linear
	Norm    *nn.LayerNorm
	Decoder *nn.Linear // W [V, D], B [V]
}

func loadLMHead(cfg *Config, root *weights.Loader, wordTable *tensor.Tensor) (*LMHead, error) {
	d, v := cfg.HiddenSize, cfg.VocabSize
	w := root.Sub("lm_head")
	h := &LMHead{Decoder: &nn.Linear{Threads: root.Threads()}}
	var err error
	if h.Dense, err = w.Linear("dense", d, d, true); err != nil {
		return nil, err
	}
	if h.Norm, err = w.LayerNorm("layer_norm", d, cfg.LayerNormEps); err != nil {
		return nil, err
	}
	switch {
	case w.Has("decoder.weight"):
		if h.Decoder.W, err = w.Weight("decoder.weight", v, d); err != nil {
			return nil, err
		}
	case cfg.TieWordEmbeddings:
		h.Decoder.W = wordTable
	default:
		return nil, fmt.Errorf("%s: missing tensor %q (tie_word_embeddings is false, so the decoder cannot reuse the word embeddings)",
			"mpnet", w.Name("decoder.weight"))
	}
	bias := "bias"
	if !w.Has(bias) && w.Has("decoder.bias") {
		bias = "decoder.bias"
	}
	if h.Decoder.B, err = w.F32(bias, v); err != nil {
		return nil, err
	}
	return h, nil
}

// Forward maps hidden [..., D] to vocabulary logits [..., V].
func (h *LMHead) Forward(hidden *tensor.Tensor) *tensor.Tensor {
	x := h.Dense.Apply(hidden)
	h.Dense.Threads.Activate(tensor.GELU, x)
	h.Norm.Forward(x, x)
	return h.Decoder.Apply(x)
}

// ClassificationHead is MPNetClassificationHead: the first token through
// dense, tanh and out_proj.
type ClassificationHead struct {
	Dense, Out *nn.Linear
}

func loadClassificationHead(root *weights.Loader, d, labels int) (*ClassificationHead, error) {
	h := &ClassificationHead{}
	var err error
	if h.Dense, err = root.Linear("classifier.dense", d, d, true); err != nil {
		return nil, err
	}
	if h.Out, err = root.Linear("classifier.out_proj", d, labels, true); err != nil {
		return nil, err
	}
	return h, nil
}

// Forward maps hidden [B, S, D] to logits [B, labels].
func (h *ClassificationHead) Forward(hidden *tensor.Tensor) *tensor.Tensor {
	x := h.Dense.Apply(firstTokens(hidden))
	h.Dense.Threads.Activate(tensor.Tanh, x)
	return h.Out.Apply(x)
}
