package pipeline

import (
	"context"
	"fmt"
	"github.com/embrace-go/embrace/hfdir"
	"github.com/embrace-go/embrace/models/arch"
	"math"
	"path/filepath"
	"strings"

	"github.com/embrace-go/embrace/models"
	"github.com/embrace-go/embrace/tensor"
	"github.com/embrace-go/embrace/tokenizer"
)

// SentenceEmbedder gives one vector per text, as sentence-transformers'
// SentenceTransformer.encode does: the folder's modules.json names the
// transformer, the pooling (1_Pooling/config.json) and an optional
// Normalize. A plain checkpoint folder without modules.json gets mean
// pooling and no normalization, as sentence-transformers gives it.
type SentenceEmbedder struct {
	enc       *encoder
	tok       *tokenizer.Tokenizer // with the max_seq_length truncation
	modes     []Pooling            // pooling modes, concatenated in this order
	post      []postStep           // Dense and Normalize modules after pooling, in order
	maxSeqLen int
	lower     bool // sentence_bert_config.json do_lower_case
}

// postStep is a module applied to pooled embeddings: a Dense layer, or L2
// normalization when dense is nil.
type postStep struct {
	dense *models.Dense
}

// Pooling is a sentence-transformers pooling mode (1_Pooling/config.json).
type Pooling string

// Pooling modes (1_Pooling/config.json).
const (
	PoolCLS         Pooling = "cls"
	PoolMax                 = "max"
	PoolMean                = "mean"
	PoolMeanSqrtLen         = "mean_sqrt_len_tokens"
	PoolWeighted            = "weightedmean" // mean weighted by position (1, 2, ...)
	PoolLastToken           = "lasttoken"    // the last real token
)

// NewSentenceEmbedder loads a sentence-transformers folder (or any encoder
// checkpoint) from a folder or Hub repo id.
func NewSentenceEmbedder(ctx context.Context, nameOrDir string, opt *Options) (*SentenceEmbedder, error) {
	dir, err := resolve(ctx, nameOrDir, opt)
	if err != nil {
		return nil, err
	}
	meta, err := hfdir.Read(dir)
	if err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	modelDir := dir
	modes := []Pooling{PoolMean}
	var post []postStep
	closeAll := func() {
		for _, p := range post {
			if p.dense != nil {
				p.dense.Close()
			}
		}
	}
	poolDim := 0
	st := meta.SentenceTransformers
	if st != nil {
		where := meta.Path("modules.json")
		sawTransformer, sawPooling := false, false
		for i, m := range st.Modules {
			switch m.Kind {
			case "Transformer":
				if sawTransformer || i != 0 {
					return nil, fmt.Errorf("pipeline: %s: %w: transformer module at position %d", where, arch.ErrUnsupported, i)
				}
				sawTransformer = true
				modelDir = filepath.Join(dir, m.Path)
			case "Pooling":
				sawPooling = true
				modes, poolDim = nil, m.Pooling.Dim
				for _, mode := range m.Pooling.Modes {
					modes = append(modes, Pooling(mode))
				}
			case "Dense", "Normalize":
				if !sawPooling {
					closeAll()
					return nil, fmt.Errorf("pipeline: %s: %w: %s module before the pooling", where, arch.ErrUnsupported, m.Kind)
				}
				if m.Kind == "Normalize" {
					post = append(post, postStep{})
					continue
				}
				d, err := models.LoadDense(filepath.Join(dir, m.Path))
				if err != nil {
					closeAll()
					return nil, fmt.Errorf("pipeline: %w", err)
				}
				d.Linear.Threads = tensor.Threads(opt.threads())
				post = append(post, postStep{dense: d})
			default:
				closeAll()
				return nil, fmt.Errorf("pipeline: %s: %w: sentence-transformers module %q", where, arch.ErrUnsupported, m.Type)
			}
		}
		if !sawTransformer {
			closeAll()
			return nil, fmt.Errorf("pipeline: %s: no Transformer module", where)
		}
	}
	e, err := openEncoder(ctx, modelDir, opt)
	if err != nil {
		closeAll()
		return nil, err
	}
	s := &SentenceEmbedder{enc: e, modes: modes, post: post}
	hidden := e.info.HiddenSize
	if poolDim != 0 && poolDim != hidden {
		s.Close()
		return nil, fmt.Errorf("pipeline: %s: pooling expects embeddings of width %d, the model's hidden size is %d", dir, poolDim, hidden)
	}
	width := len(modes) * hidden
	for _, p := range post {
		if p.dense == nil {
			continue
		}
		if p.dense.In() != width {
			s.Close()
			return nil, fmt.Errorf("pipeline: %s: a Dense module takes width %d, it receives %d", dir, p.dense.In(), width)
		}
		width = p.dense.Out()
	}
	// max_seq_length from sentence_bert_config.json, else the smaller of
	// the model's positions and the tokenizer's model_max_length.
	positions := e.info.MaxPositions
	switch {
	case st != nil && st.MaxSeqLength > 0:
		s.maxSeqLen = st.MaxSeqLength
	case e.modelMaxLength > 0 && positions > 0:
		s.maxSeqLen = min(positions, e.modelMaxLength)
	case e.modelMaxLength > 0:
		s.maxSeqLen = e.modelMaxLength
	default:
		s.maxSeqLen = positions
	}
	if st != nil {
		s.lower = st.DoLowerCase
	}
	s.tok = e.tok
	if e.truncate && s.maxSeqLen > 0 {
		s.tok = e.tok.WithTruncation(&tokenizer.TruncationParams{MaxLength: s.maxSeqLen, Strategy: tokenizer.TruncateLongestFirst})
	}
	return s, nil
}

// Close releases the model.
func (s *SentenceEmbedder) Close() error {
	for _, p := range s.post {
		if p.dense != nil {
			p.dense.Close()
		}
	}
	return s.enc.Close()
}

// Dim is the length of the embeddings.
func (s *SentenceEmbedder) Dim() int {
	d := len(s.modes) * s.enc.info.HiddenSize
	for _, p := range s.post {
		if p.dense != nil {
			d = p.dense.Out()
		}
	}
	return d
}

// MaxSeqLength is the token count texts are truncated to (unless
// Options.Truncation is off: then only the model's positions bound them).
func (s *SentenceEmbedder) MaxSeqLength() int { return s.maxSeqLen }

// Embed returns one embedding per text. Texts longer than MaxSeqLength are
// cut to it, as sentence-transformers does, unless Options.Truncation is
// off.
func (s *SentenceEmbedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	out, _, err := s.EmbedWithInfo(ctx, texts)
	return out, err
}

// EmbedWithInfo is Embed that also reports, per text, whether it was
// truncated.
func (s *SentenceEmbedder) EmbedWithInfo(ctx context.Context, texts []string) ([][]float32, []InputInfo, error) {
	d := s.enc.info.HiddenSize
	out := make([][]float32, len(texts))
	infos := make([]InputInfo, len(texts))
	err := chunks(ctx, len(texts), s.enc.batch, func(lo, hi int) error {
		encs := make([]*tokenizer.Encoding, 0, hi-lo)
		for i := lo; i < hi; i++ {
			text := texts[i]
			if s.lower {
				text = strings.ToLower(text)
			}
			enc, info, err := s.enc.encodeText(s.tok, i, text)
			if err != nil {
				return err
			}
			encs = append(encs, enc)
			infos[i] = info
		}
		res, in, err := s.enc.forward(ctx, encs)
		if err != nil {
			return err
		}
		h := res.LastHiddenState.Float32s()
		pooled := make([]float32, 0, (hi-lo)*len(s.modes)*d)
		for i := lo; i < hi; i++ {
			b := i - lo
			rows := h[b*in.Seq*d : (b+1)*in.Seq*d]
			mask := in.AttentionMask[b*in.Seq : (b+1)*in.Seq]
			pooled = append(pooled, s.pool(rows, mask, d)...)
		}
		x, w := pooled, len(s.modes)*d
		for _, p := range s.post {
			if p.dense != nil {
				x, w = p.dense.Apply(x, hi-lo), p.dense.Out()
			} else {
				normalizeRows(x, w)
			}
		}
		for i := lo; i < hi; i++ {
			out[i] = x[(i-lo)*w : (i-lo+1)*w : (i-lo+1)*w]
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return out, infos, nil
}

// pool reduces token embeddings [S, D] to one vector by the configured
// modes.
func (s *SentenceEmbedder) pool(rows []float32, mask []int, d int) []float32 {
	emb := make([]float32, 0, len(s.modes)*d)
	count := 0
	for _, m := range mask {
		count += m
	}
	for _, mode := range s.modes {
		v := make([]float64, d)
		switch mode {
		case PoolCLS:
			for j := range v {
				v[j] = float64(rows[j])
			}
		case PoolMax:
			for j := range v {
				v[j] = -1e9 // what sentence-transformers fills padding with
			}
			for t, m := range mask {
				for j := range v {
					x := float64(rows[t*d+j])
					if m == 0 {
						x = -1e9
					}
					v[j] = max(v[j], x)
				}
			}
		case PoolWeighted:
			var wsum float64
			for t, m := range mask {
				w := float64((t + 1) * m)
				wsum += w
				for j := range v {
					v[j] += w * float64(rows[t*d+j])
				}
			}
			for j := range v {
				v[j] /= max(wsum, 1e-9)
			}
		case PoolLastToken:
			// Padding is on the right: the last real token precedes it.
			last := max(count-1, 0)
			for j := range v {
				v[j] = float64(rows[last*d+j])
			}
		case PoolMean, PoolMeanSqrtLen:
			for t, m := range mask {
				if m == 0 {
					continue
				}
				for j := range v {
					v[j] += float64(rows[t*d+j])
				}
			}
			div := max(float64(count), 1e-9)
			if mode == PoolMeanSqrtLen {
				div = math.Sqrt(div)
			}
			for j := range v {
				v[j] /= div
			}
		}
		for _, x := range v {
			emb = append(emb, float32(x))
		}
	}
	return emb
}

// normalizeRows scales each row of width w to unit L2 norm (rows of norm
// below 1e-12 are divided by 1e-12, as torch's F.normalize does).
func normalizeRows(xs []float32, w int) {
	for i := 0; i+w <= len(xs); i += w {
		row := xs[i : i+w]
		var ss float64
		for _, x := range row {
			ss += float64(x) * float64(x)
		}
		n := max(math.Sqrt(ss), 1e-12)
		for j := range row {
			row[j] = float32(float64(row[j]) / n)
		}
	}
}

// FeatureExtractor is the feature-extraction pipeline: the last hidden state
// of every token.
type FeatureExtractor struct {
	enc *encoder
}

// NewFeatureExtractor loads any BERT-family checkpoint from a folder or Hub
// repo id.
func NewFeatureExtractor(ctx context.Context, nameOrDir string, opt *Options) (*FeatureExtractor, error) {
	e, err := openEncoder(ctx, nameOrDir, opt)
	if err != nil {
		return nil, err
	}
	return &FeatureExtractor{enc: e}, nil
}

// Close releases the model.
func (f *FeatureExtractor) Close() error { return f.enc.Close() }

// Extract returns, per text, one vector per token (special tokens included).
// A text longer than the model accepts is cut or refused by
// Options.Truncation.
func (f *FeatureExtractor) Extract(ctx context.Context, texts []string) ([][][]float32, error) {
	out, _, err := f.ExtractWithInfo(ctx, texts)
	return out, err
}

// ExtractWithInfo is Extract that also reports, per text, whether it was
// truncated.
func (f *FeatureExtractor) ExtractWithInfo(ctx context.Context, texts []string) ([][][]float32, []InputInfo, error) {
	d := f.enc.info.HiddenSize
	out := make([][][]float32, len(texts))
	infos := make([]InputInfo, len(texts))
	err := chunks(ctx, len(texts), f.enc.batch, func(lo, hi int) error {
		encs := make([]*tokenizer.Encoding, 0, hi-lo)
		for i := lo; i < hi; i++ {
			enc, info, err := f.enc.encodeText(f.enc.tok, i, texts[i])
			if err != nil {
				return err
			}
			encs = append(encs, enc)
			infos[i] = info
		}
		res, in, err := f.enc.forward(ctx, encs)
		if err != nil {
			return err
		}
		h := res.LastHiddenState.Float32s()
		for i := lo; i < hi; i++ {
			n := len(encs[i-lo].IDs)
			vecs := make([][]float32, n)
			for t := range vecs {
				off := ((i-lo)*in.Seq + t) * d
				vecs[t] = append([]float32(nil), h[off:off+d]...)
			}
			out[i] = vecs
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return out, infos, nil
}
