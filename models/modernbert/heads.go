package modernbert

import (
	"fmt"

	"github.com/embrace-go/embrace/models/weights"
	"github.com/embrace-go/embrace/nn"
	"github.com/embrace-go/embrace/tensor"
)

// PredictionHead is ModernBertPredictionHead: dense (bias when
// classifier_bias), classifier_activation, norm.
type PredictionHead struct {
	Dense *nn.Linear
	Act   tensor.Activation
	Norm  *nn.LayerNorm
}

func loadPredictionHead(cfg *Config, root *weights.Loader) (*PredictionHead, error) {
	d := cfg.HiddenSize
	h := &PredictionHead{Act: cfg.HeadAct}
	var err error
	if h.Dense, err = root.Linear("head.dense", d, d, cfg.ClassifierBias); err != nil {
		return nil, err
	}
	if h.Norm, err = layerNorm(root, "head.norm", cfg); err != nil {
		return nil, err
	}
	return h, nil
}

// Forward maps x [..., D] to a new [..., D].
func (h *PredictionHead) Forward(x *tensor.Tensor) *tensor.Tensor {
	y := h.Dense.Apply(x)
	h.Dense.Threads.Activate(h.Act, y)
	h.Norm.Forward(y, y)
	return y
}

// loadDecoder loads the masked-LM decoder: its own weight when the
// checkpoint has one, else the token embedding table (tied), and
// decoder.bias when decoder_bias.
func loadDecoder(cfg *Config, root *weights.Loader, tokTable *tensor.Tensor) (*nn.Linear, error) {
	d, v := cfg.HiddenSize, cfg.VocabSize
	dec := &nn.Linear{Threads: root.Threads()}
	var err error
	switch {
	case root.Has("decoder.weight"):
		if dec.W, err = root.Weight("decoder.weight", v, d); err != nil {
			return nil, err
		}
	case cfg.TieWordEmbeddings:
		dec.W = tokTable
	default:
		return nil, fmt.Errorf("modernbert: missing tensor %q (tie_word_embeddings is false, so the decoder cannot reuse the token embeddings)", root.Name("decoder.weight"))
	}
	if cfg.DecoderBias {
		if dec.B, err = root.F32("decoder.bias", v); err != nil {
			return nil, err
		}
	}
	return dec, nil
}

// pool reduces hidden [B, S, D] to [B, D] as ModernBertForSequenceClassification
// does: "cls" takes token 0; "mean" averages the real tokens (all tokens
// when mask is nil).
func pool(hidden *tensor.Tensor, mask []int, how string) *tensor.Tensor {
	b, s, d := hidden.Dim(0), hidden.Dim(1), hidden.Dim(2)
	out := tensor.Zeros(b, d)
	src, dst := hidden.Float32s(), out.Float32s()
	for i := 0; i < b; i++ {
		o := dst[i*d : (i+1)*d]
		if how == "cls" {
			copy(o, src[i*s*d:i*s*d+d])
			continue
		}
		acc := make([]float64, d)
		n := 0
		for t := 0; t < s; t++ {
			if mask != nil && mask[i*s+t] == 0 {
				continue
			}
			n++
			for k, v := range src[(i*s+t)*d : (i*s+t+1)*d] {
				acc[k] += float64(v)
			}
		}
		for k := range o {
			if n > 0 {
				o[k] = float32(acc[k] / float64(n))
			}
		}
	}
	return out
}
