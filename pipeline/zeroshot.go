package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/embrace-go/embrace/hfdir"
	"github.com/embrace-go/embrace/models/arch"
	"github.com/embrace-go/embrace/tokenizer"
)

// ZeroShotClassifier is the zero-shot-classification pipeline: it scores
// labels it was never trained on with a natural-language-inference (NLI)
// model, as transformers' zero-shot-classification pipeline does. Each
// candidate label becomes a hypothesis ("This example is {label}.") paired
// with the sequence as premise, and the model's belief that the premise
// entails the hypothesis is the label's score.
//
// The model is a sequence classifier with an entailment label (the first
// label2id name starting with "entail", any case) and a contradiction label
// (id 0, or the last id when entailment is 0). Pairs longer than the model
// accepts are truncated with the only_first strategy (the sequence is cut,
// never the hypothesis), as the transformers pipeline does; with
// Options.Truncation off they are an error wrapping ErrTooLong.
type ZeroShotClassifier struct {
	enc                       *encoder
	entailment, contradiction int
}

// ZeroShotOptions tune ZeroShotClassifier.Classify.
type ZeroShotOptions struct {
	// HypothesisTemplate turns a label into a hypothesis; "{}" marks where
	// the label goes, as in Python's str.format ("{0}" works too, "{{" and
	// "}}" are literal braces). Empty means "This example is {}.".
	HypothesisTemplate string
	// MultiLabel scores each label on its own (softmax over the label's
	// contradiction and entailment logits, so scores need not sum to 1)
	// instead of as one choice among the labels (softmax over every label's
	// entailment logit). A single candidate label is always scored on its
	// own, as in transformers.
	MultiLabel bool
}

// DefaultHypothesisTemplate is the template transformers' pipeline uses.
const DefaultHypothesisTemplate = "This example is {}."

// NewZeroShotClassifier loads an NLI sequence classifier from a folder or Hub
// repo id. A model that is not a sequence classifier, or whose labels have no
// entailment label, is refused with an error wrapping arch.ErrUnsupported.
func NewZeroShotClassifier(ctx context.Context, nameOrDir string, opt *Options) (*ZeroShotClassifier, error) {
	e, err := openEncoder(ctx, nameOrDir, opt, arch.TaskSequenceClassification)
	if err != nil {
		return nil, err
	}
	n := len(e.info.Labels)
	ent, ok, err := entailmentID(e.meta.Config)
	switch {
	case err != nil:
		e.Close()
		return nil, fmt.Errorf("pipeline: %w", err)
	case !ok:
		e.Close()
		return nil, fmt.Errorf("pipeline: %s: %w: zero-shot classification needs an NLI model, and no label of %q starts with \"entail\"", e.dir, arch.ErrUnsupported, e.info.Labels)
	case n < 2 || ent < 0 || ent >= n:
		e.Close()
		return nil, fmt.Errorf("pipeline: %s: %w: entailment label id %d for a model with %d labels", e.dir, arch.ErrUnsupported, ent, n)
	}
	contra := 0
	if ent == 0 {
		contra = n - 1 // transformers' index -1
	}
	// The pipeline truncates the premise (only_first) to what the
	// model accepts.
	if limit := e.pairLimit(); limit > 0 && e.truncate {
		e.tok = e.tok.WithTruncation(&tokenizer.TruncationParams{MaxLength: limit, Strategy: tokenizer.TruncateOnlyFirst})
	}
	return &ZeroShotClassifier{enc: e, entailment: ent, contradiction: contra}, nil
}

// Close releases the model.
func (z *ZeroShotClassifier) Close() error { return z.enc.Close() }

// MaxLength is the longest (sequence, hypothesis) pair, in tokens, the
// classifier passes to the model; the sequence of a longer pair is cut
// (only_first). 0 means no limit is known.
func (z *ZeroShotClassifier) MaxLength() int { return z.enc.pairLimit() }

// EntailmentID is the entailment label's id.
func (z *ZeroShotClassifier) EntailmentID() int { return z.entailment }

// ContradictionID is the contradiction label's id (see EntailmentID).
func (z *ZeroShotClassifier) ContradictionID() int { return z.contradiction }

// Classify scores each candidate label for sequence and returns them best
// first. Equal scores come out in reverse input order, as transformers'
// reversed ascending argsort puts them.
func (z *ZeroShotClassifier) Classify(ctx context.Context, sequence string, candidateLabels []string, opt ZeroShotOptions) ([]LabelScore, error) {
	out, _, err := z.ClassifyWithInfo(ctx, sequence, candidateLabels, opt)
	return out, err
}

// ClassifyWithInfo is Classify that also reports whether the sequence was
// cut to fit the model next to a hypothesis (Options.Truncation).
func (z *ZeroShotClassifier) ClassifyWithInfo(ctx context.Context, sequence string, candidateLabels []string, opt ZeroShotOptions) ([]LabelScore, InputInfo, error) {
	info := InputInfo{Windows: 1}
	if len(candidateLabels) == 0 {
		return nil, info, fmt.Errorf("pipeline: zero-shot classification needs at least one candidate label")
	}
	tmpl := opt.HypothesisTemplate
	if tmpl == "" {
		tmpl = DefaultHypothesisTemplate
	}
	hyps := make([]string, len(candidateLabels))
	for i, l := range candidateLabels {
		h, err := formatHypothesis(tmpl, l)
		if err != nil {
			return nil, info, err
		}
		hyps[i] = h
	}
	n := len(z.enc.info.Labels)
	logits := make([]float32, 0, len(hyps)*n)
	err := chunks(ctx, len(hyps), z.enc.batch, func(lo, hi int) error {
		encs := make([]*tokenizer.Encoding, 0, hi-lo)
		for i := lo; i < hi; i++ {
			enc, err := z.enc.tok.EncodePair(sequence, hyps[i], true)
			if err != nil {
				return fmt.Errorf("pipeline: label %d (%q): %w", i, candidateLabels[i], err)
			}
			fit, err := z.enc.fit("the pair of the sequence and label", i, enc)
			if err != nil {
				return err
			}
			info.Truncated = info.Truncated || fit.Truncated
			encs = append(encs, enc)
		}
		res, _, err := z.enc.forward(ctx, encs)
		if err != nil {
			return err
		}
		l := res.Logits.Float32s()
		if len(l) != (hi-lo)*n {
			return fmt.Errorf("pipeline: the model returned %d logits for %d pairs of %d labels", len(l), hi-lo, n)
		}
		logits = append(logits, l...)
		return nil
	})
	if err != nil {
		return nil, info, err
	}
	scores := make([]float64, len(hyps))
	if opt.MultiLabel || len(hyps) == 1 {
		for i := range hyps {
			p := softmax64([]float32{logits[i*n+z.contradiction], logits[i*n+z.entailment]})
			scores[i] = p[1]
		}
	} else {
		ent := make([]float32, len(hyps))
		for i := range hyps {
			ent[i] = logits[i*n+z.entailment]
		}
		scores = softmax64(ent)
	}
	order := rankScores(scores)
	out := make([]LabelScore, len(order))
	for k, i := range order {
		out[k] = LabelScore{Label: candidateLabels[i], Score: scores[i]}
	}
	return out, info, nil
}

// rankScores returns the indexes of scores, highest score first, as
// transformers orders them: reversed(np.argsort(scores)), so equal scores
// come out last index first (what numpy's default argsort gives small
// arrays). Scores are compared as the float32 values numpy sorts.
func rankScores(scores []float64) []int {
	order := make([]int, len(scores))
	for i := range order {
		order[i] = len(order) - 1 - i
	}
	sort.SliceStable(order, func(a, b int) bool { return float32(scores[order[a]]) > float32(scores[order[b]]) })
	return order
}

// formatHypothesis fills a template the way Python's str.format(label) does
// for the forms a hypothesis template uses: "{}" and "{0}" take the label,
// "{{" and "}}" are literal braces; any other field is an error, and so is
// a template without a field (transformers refuses it too).
func formatHypothesis(tmpl, label string) (string, error) {
	var b strings.Builder
	fields := 0
	for i := 0; i < len(tmpl); i++ {
		c := tmpl[i]
		switch {
		case c == '{' && strings.HasPrefix(tmpl[i:], "{{"), c == '}' && strings.HasPrefix(tmpl[i:], "}}"):
			b.WriteByte(c)
			i++
		case c == '{' && strings.HasPrefix(tmpl[i:], "{}"):
			b.WriteString(label)
			fields++
			i++
		case c == '{' && strings.HasPrefix(tmpl[i:], "{0}"):
			b.WriteString(label)
			fields++
			i += 2
		case c == '{' || c == '}':
			return "", fmt.Errorf("pipeline: hypothesis template %q: unsupported field at byte %d (use {} for the label, {{ and }} for braces)", tmpl, i)
		default:
			b.WriteByte(c)
		}
	}
	if fields == 0 {
		return "", fmt.Errorf("pipeline: hypothesis template %q has no {} where the label should go", tmpl)
	}
	return b.String(), nil
}

// entailmentID finds the entailment label as transformers does: the first
// name of label2id, in the file's order, that starts with "entail" in any
// case. Without label2id the names of id2label are tried in id order.
func entailmentID(cfg *hfdir.Config) (int, bool, error) {
	if raw, ok := cfg.Raw["label2id"]; ok && !bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		names, ids, err := orderedLabel2ID(raw)
		if err != nil {
			return 0, false, fmt.Errorf("%s: label2id: %w", cfg.Path, err)
		}
		for i, name := range names {
			if isEntailment(name) {
				return ids[i], true, nil
			}
		}
		return 0, false, nil
	}
	for id, name := range cfg.ID2Label {
		if isEntailment(name) {
			return id, true, nil
		}
	}
	return 0, false, nil
}

func isEntailment(label string) bool {
	return strings.HasPrefix(strings.ToLower(label), "entail")
}

// orderedLabel2ID reads a label2id object keeping its keys' order, which a
// Go map would lose.
func orderedLabel2ID(raw json.RawMessage) ([]string, []int, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, nil, fmt.Errorf("not an object")
	}
	var names []string
	var ids []int
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, nil, err
		}
		name, _ := t.(string)
		var id float64
		if err := dec.Decode(&id); err != nil {
			return nil, nil, fmt.Errorf("label %q: %w", name, err)
		}
		if id != math.Trunc(id) || id < 0 || id > math.MaxInt32 {
			return nil, nil, fmt.Errorf("label %q: id %v is not a label id", name, id)
		}
		names = append(names, name)
		ids = append(ids, int(id))
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return nil, nil, fmt.Errorf("unterminated object")
	}
	return names, ids, nil
}
