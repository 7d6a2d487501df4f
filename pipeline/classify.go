package pipeline

import (
	"context"
	"fmt"
	"github.com/embrace-go/embrace/models/arch"
	"math"
	"sort"

	"github.com/embrace-go/embrace/tokenizer"
)

// TextClassifier is the text-classification pipeline (sentiment, topics,
// ...), for checkpoints saved as *ForSequenceClassification.
type TextClassifier struct {
	enc *encoder
}

// LabelScore is one label with its probability.
type LabelScore struct {
	Label string
	Score float64
}

// ClassifyOptions tune TextClassifier.Classify.
type ClassifyOptions struct {
	// TopK is how many labels to return per text, best first; 0 returns all
	// (Hugging Face's top_k=None).
	TopK int
	// Function is "softmax", "sigmoid" or "none"; empty picks it from the
	// config as Hugging Face does: sigmoid for problem_type
	// multi_label_classification or a single label, none for regression,
	// softmax otherwise.
	Function ClassifyFunction
}

// NewTextClassifier loads a sequence-classification checkpoint from a folder
// or Hub repo id.
func NewTextClassifier(ctx context.Context, nameOrDir string, opt *Options) (*TextClassifier, error) {
	e, err := openEncoder(ctx, nameOrDir, opt, arch.TaskSequenceClassification)
	if err != nil {
		return nil, err
	}
	return &TextClassifier{enc: e}, nil
}

// Close releases the model.
func (c *TextClassifier) Close() error { return c.enc.Close() }

// Labels returns the model's labels in id order.
func (c *TextClassifier) Labels() []string {
	return append([]string(nil), c.enc.info.Labels...)
}

func (c *TextClassifier) function(opt ClassifyOptions) (ClassifyFunction, error) {
	if opt.Function != "" {
		switch opt.Function {
		case FunctionSoftmax, FunctionSigmoid, FunctionNone:
			return opt.Function, nil
		}
		return "", fmt.Errorf("pipeline: unknown function %q (want softmax, sigmoid or none)", opt.Function)
	}
	problem, _ := c.enc.meta.Config.String("problem_type", "")
	switch {
	case problem == "regression":
		return "none", nil
	case problem == "multi_label_classification" || len(c.enc.info.Labels) == 1:
		return "sigmoid", nil
	}
	return "softmax", nil
}

// ClassifyFunction turns logits into scores, as the text-classification
// pipeline's function_to_apply.
type ClassifyFunction string

// The functions.
const (
	FunctionSoftmax ClassifyFunction = "softmax"
	FunctionSigmoid ClassifyFunction = "sigmoid"
	FunctionNone    ClassifyFunction = "none" // the raw logits
)

// Classify scores every text; each result lists labels best first. A text
// longer than the model accepts is cut or refused by Options.Truncation.
func (c *TextClassifier) Classify(ctx context.Context, texts []string, opt ClassifyOptions) ([][]LabelScore, error) {
	out, _, err := c.ClassifyWithInfo(ctx, texts, opt)
	return out, err
}

// ClassifyWithInfo is Classify that also reports, per text, whether it was
// truncated.
func (c *TextClassifier) ClassifyWithInfo(ctx context.Context, texts []string, opt ClassifyOptions) ([][]LabelScore, []InputInfo, error) {
	fn, err := c.function(opt)
	if err != nil {
		return nil, nil, err
	}
	labels := c.enc.info.Labels
	out := make([][]LabelScore, len(texts))
	infos := make([]InputInfo, len(texts))
	err = chunks(ctx, len(texts), c.enc.batch, func(lo, hi int) error {
		encs := make([]*tokenizer.Encoding, 0, hi-lo)
		for i := lo; i < hi; i++ {
			enc, info, err := c.enc.encodeText(c.enc.tok, i, texts[i])
			if err != nil {
				return err
			}
			encs = append(encs, enc)
			infos[i] = info
		}
		res, _, err := c.enc.forward(ctx, encs)
		if err != nil {
			return err
		}
		logits := res.Logits.Float32s()
		n := len(labels)
		for i := lo; i < hi; i++ {
			row := logits[(i-lo)*n : (i-lo+1)*n]
			var scores []float64
			switch fn {
			case "softmax":
				scores = softmax64(row)
			case "sigmoid":
				scores = make([]float64, n)
				for j, v := range row {
					scores[j] = 1 / (1 + math.Exp(-float64(v)))
				}
			default:
				scores = make([]float64, n)
				for j, v := range row {
					scores[j] = float64(v)
				}
			}
			ls := make([]LabelScore, n)
			for j := range ls {
				ls[j] = LabelScore{Label: labels[j], Score: scores[j]}
			}
			sort.SliceStable(ls, func(a, b int) bool { return ls[a].Score > ls[b].Score })
			if opt.TopK > 0 && opt.TopK < n {
				ls = ls[:opt.TopK]
			}
			out[i] = ls
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return out, infos, nil
}
