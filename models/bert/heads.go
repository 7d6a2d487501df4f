package bert

import (
	"fmt"

	"github.com/embrace-go/embrace/models/weights"
	"github.com/embrace-go/embrace/nn"
	"github.com/embrace-go/embrace/tensor"
)

// firstTokens copies the first token's row of each sequence: [B, S, D] → [B, D].
func firstTokens(h *tensor.Tensor) *tensor.Tensor {
	b, s, d := h.Dim(0), h.Dim(1), h.Dim(2)
	out := tensor.Zeros(b, d)
	src, dst := h.Float32s(), out.Float32s()
	for i := 0; i < b; i++ {
		copy(dst[i*d:(i+1)*d], src[i*s*d:i*s*d+d])
	}
	return out
}

// Pooler is BertPooler: tanh(dense(first token)).
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

// MLMHead predicts tokens from hidden states: dense, activation, LayerNorm,
// then a decoder to the vocabulary whose weight is the word embedding table
// when the checkpoint has no separate one (tied weights). It is BERT's
// cls.predictions, RoBERTa's lm_head and DistilBERT's vocab_* layers.
type MLMHead struct {
	Transform *nn.Linear
	Act       tensor.Activation
	Norm      *nn.LayerNorm
	Decoder   *nn.Linear // W [V, D], B [V]
}

func loadMLMHead(cfg *Config, root *weights.Loader, wordTable *tensor.Tensor) (*MLMHead, error) {
	d, v := cfg.HiddenSize, cfg.VocabSize
	var dense, norm, dec, bias, decBias string
	act := cfg.Act
	switch cfg.Family {
	case BERT:
		dense, norm = "cls.predictions.transform.dense", "cls.predictions.transform.LayerNorm"
		dec, bias, decBias = "cls.predictions.decoder.weight", "cls.predictions.bias", "cls.predictions.decoder.bias"
	case RoBERTa:
		dense, norm = "lm_head.dense", "lm_head.layer_norm"
		dec, bias, decBias = "lm_head.decoder.weight", "lm_head.bias", "lm_head.decoder.bias"
		act = tensor.GELU // RobertaLMHead always uses exact gelu
	case DistilBERT:
		dense, norm = "vocab_transform", "vocab_layer_norm"
		dec, bias, decBias = "vocab_projector.weight", "vocab_projector.bias", "vocab_projector.bias"
	}
	h := &MLMHead{Act: act}
	var err error
	if h.Transform, err = root.Linear(dense, d, d, true); err != nil {
		return nil, err
	}
	if h.Norm, err = root.LayerNorm(norm, d, cfg.LayerNormEps); err != nil {
		return nil, err
	}
	h.Decoder = &nn.Linear{Threads: root.Threads()}
	switch {
	case root.Has(dec):
		if h.Decoder.W, err = root.Weight(dec, v, d); err != nil {
			return nil, err
		}
	case cfg.TieWordEmbeddings:
		h.Decoder.W = wordTable
	default:
		return nil, fmt.Errorf("%w (tie_word_embeddings is false, so the decoder cannot reuse the word embeddings)", missing(root, dec))
	}
	if !root.Has(bias) && root.Has(decBias) {
		bias = decBias
	}
	if h.Decoder.B, err = root.F32(bias, v); err != nil {
		return nil, err
	}
	return h, nil
}

func missing(l *weights.Loader, name string) error {
	_, err := l.F32(name)
	return err
}

// Forward maps hidden [..., D] to vocabulary logits [..., V].
func (h *MLMHead) Forward(hidden *tensor.Tensor) *tensor.Tensor {
	x := h.Transform.Apply(hidden)
	h.Transform.Threads.Activate(h.Act, x)
	h.Norm.Forward(x, x)
	return h.Decoder.Apply(x)
}

// ClassificationHead turns a sequence into label logits. BERT classifies the
// pooler output; DistilBERT the first token through pre_classifier + ReLU;
// RoBERTa the first token through dense + tanh + out_proj.
type ClassificationHead struct {
	Family Family
	Pre    *nn.Linear // DistilBERT pre_classifier / RoBERTa classifier.dense; nil for BERT
	Out    *nn.Linear // [labels, D]
}

func loadClassificationHead(cfg *Config, root *weights.Loader) (*ClassificationHead, error) {
	d, nl := cfg.HiddenSize, len(cfg.Labels)
	h := &ClassificationHead{Family: cfg.Family}
	var err error
	switch cfg.Family {
	case BERT:
		h.Out, err = root.Linear("classifier", d, nl, true)
	case DistilBERT:
		if h.Pre, err = root.Linear("pre_classifier", d, d, true); err == nil {
			h.Out, err = root.Linear("classifier", d, nl, true)
		}
	case RoBERTa:
		if h.Pre, err = root.Linear("classifier.dense", d, d, true); err == nil {
			h.Out, err = root.Linear("classifier.out_proj", d, nl, true)
		}
	}
	if err != nil {
		return nil, err
	}
	return h, nil
}

// Forward maps hidden [B, S, D] (and, for BERT, pooled [B, D]) to logits
// [B, labels].
func (h *ClassificationHead) Forward(hidden, pooled *tensor.Tensor) *tensor.Tensor {
	if h.Family == BERT {
		return h.Out.Apply(pooled)
	}
	x := h.Pre.Apply(firstTokens(hidden))
	if h.Family == DistilBERT {
		h.Pre.Threads.Activate(tensor.ReLU, x)
	} else {
		h.Pre.Threads.Activate(tensor.Tanh, x)
	}
	return h.Out.Apply(x)
}
