// Package modernbert implements ModernBERT (transformers'
// modeling_modernbert.py) and its heads, loaded from Hugging Face
// checkpoints.
//
// ModernBERT is a pre-norm encoder: token embeddings and a norm (no position
// embeddings), then layers that alternate global attention with
// sliding-window attention, both with rotary positions (a theta per kind),
// and a GeGLU feed-forward; a final norm closes the stack. Biases and norm
// shifts are present only where the config asks for them.
//
// A Model is immutable after loading and safe for concurrent use; each
// Encode allocates its outputs and takes its scratch from a pool.
// Attention runs by blocks of queries, so memory grows linearly with the
// sequence length up to max_position_embeddings.
//
// Shapes in comments: B batch, S sequence length, N = B·S rows, D hidden
// size, I intermediate size, V vocabulary, H heads, Dh = D/H.
package modernbert

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/embrace-go/embrace/hfdir"
	"github.com/embrace-go/embrace/models/arch"
	"github.com/embrace-go/embrace/models/weights"
	"github.com/embrace-go/embrace/nn"
	"github.com/embrace-go/embrace/tensor"
)

// Embeddings is ModernBertEmbeddings: tok_embeddings, then norm.
type Embeddings struct {
	Tok  *nn.Embedding
	Norm *nn.LayerNorm
}

// Layer is ModernBertEncoderLayer: x += attn(attn_norm(x)); x +=
// mlp(mlp_norm(x)).
type Layer struct {
	// AttnNorm is nil on layer 0, whose attn_norm is Identity (the
	// embeddings' norm precedes it).
	AttnNorm *nn.LayerNorm
	Wqkv     *nn.Linear // [3D, D]: q | k | v
	Wo       *nn.Linear // [D, D]
	MLPNorm  *nn.LayerNorm
	Wi       *nn.Linear // [2I, D]: input | gate
	MLPWo    *nn.Linear // [D, I]
	Act      tensor.Activation
	// Global tells whether the layer attends to every token or within the
	// sliding window; Rope is the rotary embedding of its kind.
	Global bool
	Rope   *nn.Rope
}

// Encoder is ModernBertModel: embeddings, layers and the final norm.
type Encoder struct {
	Config     *Config
	Embeddings *Embeddings
	Layers     []*Layer
	FinalNorm  *nn.LayerNorm
	threads    tensor.Threads // LoadOptions.Threads, for the attention

	work sync.Pool // *workspace
}

// layerNorm loads a LayerNorm whose bias is present only when the config's
// norm_bias says so.
func layerNorm(w *weights.Loader, name string, cfg *Config) (*nn.LayerNorm, error) {
	d := cfg.HiddenSize
	s := w.Sub(name)
	g, err := s.F32("weight", d)
	if err != nil {
		return nil, err
	}
	n := &nn.LayerNorm{Weight: g, Eps: float32(cfg.NormEps), Threads: w.Threads()}
	if cfg.NormBias {
		if n.Bias, err = s.F32("bias", d); err != nil {
			return nil, err
		}
	}
	return n, nil
}

func loadEncoder(cfg *Config, w *weights.Loader) (*Encoder, error) {
	d, in := cfg.HiddenSize, cfg.IntermediateSize
	e := &Encoder{Config: cfg, Embeddings: &Embeddings{}, threads: w.Threads()}
	var err error
	if e.Embeddings.Tok, err = w.Embedding("embeddings.tok_embeddings", cfg.VocabSize, d); err != nil {
		return nil, err
	}
	if e.Embeddings.Norm, err = layerNorm(w, "embeddings.norm", cfg); err != nil {
		return nil, err
	}
	global, err := newRope(cfg.GlobalRopeTheta, cfg.HeadDim(), cfg.MaxPositionEmbeddings)
	if err != nil {
		return nil, fmt.Errorf("modernbert: global rope: %w", err)
	}
	local, err := newRope(cfg.LocalRopeTheta, cfg.HeadDim(), cfg.MaxPositionEmbeddings)
	if err != nil {
		return nil, fmt.Errorf("modernbert: local rope: %w", err)
	}
	for i := 0; i < cfg.NumHiddenLayers; i++ {
		lw := w.Subf("layers.%d", i)
		l := &Layer{Act: cfg.Act, Global: cfg.Global[i], Rope: local}
		if l.Global {
			l.Rope = global
		}
		if i > 0 {
			if l.AttnNorm, err = layerNorm(lw, "attn_norm", cfg); err != nil {
				return nil, err
			}
		}
		if l.Wqkv, err = lw.Linear("attn.Wqkv", d, 3*d, cfg.AttentionBias); err != nil {
			return nil, err
		}
		if l.Wo, err = lw.Linear("attn.Wo", d, d, cfg.AttentionBias); err != nil {
			return nil, err
		}
		if l.MLPNorm, err = layerNorm(lw, "mlp_norm", cfg); err != nil {
			return nil, err
		}
		if l.Wi, err = lw.Linear("mlp.Wi", d, 2*in, cfg.MLPBias); err != nil {
			return nil, err
		}
		if l.MLPWo, err = lw.Linear("mlp.Wo", in, d, cfg.MLPBias); err != nil {
			return nil, err
		}
		e.Layers = append(e.Layers, l)
	}
	if e.FinalNorm, err = layerNorm(w, "final_norm", cfg); err != nil {
		return nil, err
	}
	return e, nil
}

// checkInput validates the input against the config.
func checkInput(in *arch.EncoderInput, cfg *Config) error {
	if in.Batch <= 0 || in.Seq <= 0 {
		return fmt.Errorf("modernbert: empty input (batch %d, sequence %d)", in.Batch, in.Seq)
	}
	if in.Seq > cfg.MaxPositionEmbeddings {
		return fmt.Errorf("modernbert: sequence of %d tokens is longer than the model's %d positions (max_position_embeddings): %w", in.Seq, cfg.MaxPositionEmbeddings, arch.ErrTooLong)
	}
	n := in.Batch * in.Seq
	if n/in.Batch != in.Seq || len(in.InputIDs) != n {
		return fmt.Errorf("modernbert: %d input ids for batch %d × sequence %d", len(in.InputIDs), in.Batch, in.Seq)
	}
	if in.AttentionMask != nil && len(in.AttentionMask) != n {
		return fmt.Errorf("modernbert: attention mask has %d values for batch %d × sequence %d", len(in.AttentionMask), in.Batch, in.Seq)
	}
	for i, id := range in.InputIDs {
		if id < 0 || id >= cfg.VocabSize {
			return fmt.Errorf("modernbert: input id %d at sequence %d position %d is outside the vocabulary of %d", id, i/in.Seq, i%in.Seq, cfg.VocabSize)
		}
	}
	for i, m := range in.AttentionMask {
		if m != 0 && m != 1 {
			return fmt.Errorf("modernbert: attention mask value %d at sequence %d position %d (want 0 or 1)", m, i/in.Seq, i%in.Seq)
		}
	}
	return nil
}

// Forward runs the encoder. last [B, S, D] is the output of the final norm.
// With allHidden it also returns L+1 hidden states as transformers 5.x
// records them: the embeddings after their norm, the outputs of layers
// 0..L−2, and last in place of the last layer's raw output.
func (e *Encoder) Forward(ctx context.Context, in *arch.EncoderInput, allHidden bool) (last *tensor.Tensor, hidden []*tensor.Tensor, err error) {
	cfg := e.Config
	if err := checkInput(in, cfg); err != nil {
		return nil, nil, err
	}
	n, d := in.Batch*in.Seq, cfg.HiddenSize
	ws := e.workspace(n)
	defer e.work.Put(ws)
	x := tensor.Zeros(n, d)
	if err := e.Embeddings.Tok.Forward(x, in.InputIDs); err != nil {
		return nil, nil, fmt.Errorf("modernbert: %w", err)
	}
	e.Embeddings.Norm.Forward(x, x)
	if allHidden {
		hidden = append(hidden, x.Clone().Reshape(in.Batch, in.Seq, d))
	}
	mask := nn.MaskBiasInto(ws.mask, in.AttentionMask)
	for i, l := range e.Layers {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		p := attnParams{batch: in.Batch, seq: in.Seq, heads: cfg.NumAttentionHeads, headDim: cfg.HeadDim(), threads: e.threads, window: -1, keyBias: mask}
		if !l.Global {
			p.window = cfg.Window()
		}
		l.forward(x, &ws.buffers, p)
		if allHidden && i < len(e.Layers)-1 {
			hidden = append(hidden, x.Clone().Reshape(in.Batch, in.Seq, d))
		}
	}
	e.FinalNorm.Forward(x, x)
	last = x.Reshape(in.Batch, in.Seq, d)
	if allHidden {
		hidden = append(hidden, last.Clone())
	}
	return last, hidden, nil
}

// buffers are one call's scratch activations, reused by every layer.
type buffers struct {
	h, ctx, tmp *tensor.Tensor // [N, D]
	qkv         *tensor.Tensor // [N, 3D]
	wi          *tensor.Tensor // [N, 2I]
	inter       *tensor.Tensor // [N, I]
}

// workspace is one Forward call's scratch. Its arrays are reused by later
// calls of any size they can hold.
type workspace struct {
	n int
	buffers
	mask []float32
}

func (e *Encoder) workspace(n int) *workspace {
	ws, _ := e.work.Get().(*workspace)
	if ws == nil {
		ws = new(workspace)
	}
	if ws.n == n && ws.qkv != nil {
		return ws
	}
	cfg := e.Config
	d, in := cfg.HiddenSize, cfg.IntermediateSize
	ws.n = n
	ws.h = reuse(ws.h, n, d)
	ws.ctx = reuse(ws.ctx, n, d)
	ws.tmp = reuse(ws.tmp, n, d)
	ws.qkv = reuse(ws.qkv, n, 3*d)
	ws.wi = reuse(ws.wi, n, 2*in)
	ws.inter = reuse(ws.inter, n, in)
	if cap(ws.mask) < n {
		ws.mask = make([]float32, n)
	}
	return ws
}

// reuse returns a [rows, cols] tensor on t's backing array when it is large
// enough, else a new one. Every buffer is written in full before it is read.
func reuse(t *tensor.Tensor, rows, cols int) *tensor.Tensor {
	if t != nil {
		if s := t.Float32s(); cap(s) >= rows*cols {
			return tensor.FromFloat32(s[:rows*cols], rows, cols)
		}
	}
	return tensor.Zeros(rows, cols)
}

// forward updates the residual stream x [N, D] in place through one layer.
func (l *Layer) forward(x *tensor.Tensor, b *buffers, p attnParams) {
	h := x
	if l.AttnNorm != nil {
		l.AttnNorm.Forward(b.h, x)
		h = b.h
	}
	// ModernBertAttention: fused q | k | v, rotary on q and k, attention
	// (global or windowed), Wo.
	l.Wqkv.Forward(b.qkv, h)
	qkv := b.qkv.Float32s()
	applyRope(qkv, p.batch*p.seq, p.seq, p.heads, p.headDim, l.Rope)
	attention(b.ctx.Float32s(), qkv, p)
	l.Wo.ForwardNoBias(b.tmp, b.ctx)
	// x += attn (+ bias); h = mlp_norm(x)
	l.MLPNorm.AddNorm(b.h, x, b.tmp, l.Wo.B)
	// ModernBertMLP: Wi → input | gate; Wo(act(input) · gate).
	l.Wi.Forward(b.wi, b.h)
	geglu(l.Wi.Threads, b.inter, b.wi, l.Act)
	l.MLPWo.ForwardNoBias(b.tmp, b.inter)
	l.MLPWo.Threads.AddResidual(x, b.tmp, l.MLPWo.B)
}

// geglu writes act(input) · gate into dst [N, I] from wi [N, 2I], whose rows
// are input | gate (torch's chunk(2, dim=-1) order).
func geglu(th tensor.Threads, dst, wi *tensor.Tensor, act tensor.Activation) {
	in := dst.Dim(-1)
	out, src := dst.Float32s(), wi.Float32s()
	rows := len(out) / in
	for r := 0; r < rows; r++ {
		copy(out[r*in:(r+1)*in], src[r*2*in:r*2*in+in])
	}
	th.ActivateSlice(act, out)
	for r := 0; r < rows; r++ {
		o, g := out[r*in:(r+1)*in], src[r*2*in+in:(r+1)*2*in]
		for i := range o {
			o[i] *= g[i]
		}
	}
}

// Model is ModernBERT with the head its config.json names.
type Model struct {
	Config  *Config
	Encoder *Encoder
	// Head is ModernBertPredictionHead (dense, classifier_activation, norm),
	// shared by every head below; nil for the base model.
	Head *PredictionHead
	// At most one of these is set, according to Config.Task.
	Decoder    *nn.Linear // masked LM: W [V, D] (tied to tok_embeddings unless the checkpoint has its own), B [V] when decoder_bias
	Classifier *nn.Linear // sequence or token classification: [labels, D]; question answering: [2, D] (start, end); with bias

	closer func() error
	guard  arch.Guard
}

// Load reads a checkpoint folder: config.json, then model.safetensors or a
// sharded model.safetensors.index.json. The head comes from config.json's
// architectures.
func Load(dir string) (*Model, error) {
	f, err := hfdir.Read(dir)
	if err != nil {
		return nil, err
	}
	return loadFolder(f, arch.LoadOptions{})
}

func loadFolder(f *hfdir.Folder, opt arch.LoadOptions) (*Model, error) {
	hc, err := f.RequireConfig()
	if err != nil {
		return nil, err
	}
	cfg, err := ParseConfig(hc)
	if err != nil {
		return nil, err
	}
	ckpt, src, err := weights.Open(f, opt)
	if err != nil {
		return nil, fmt.Errorf("modernbert: %w", err)
	}
	m, err := New(cfg, src, f.Dir)
	if err != nil {
		ckpt.Close()
		return nil, err
	}
	m.closer = ckpt.Close
	return m, nil
}

// Close waits for the calls in flight and releases the checkpoint's memory
// mapping; calls made afterwards return arch.ErrClosed.
func (m *Model) Close() error { return m.guard.Close(m.closer) }

// New builds a model from cfg and the tensors in src; where names the source
// in errors. Base-model weights are accepted with or without the "model."
// prefix.
func New(cfg *Config, src weights.Source, where string) (*Model, error) {
	p, ok := weights.FirstPrefix(src, "embeddings.tok_embeddings.weight", "model", "")
	if !ok {
		return nil, fmt.Errorf("%s: missing tensor %q (nor without the \"model.\" prefix)", where, "model.embeddings.tok_embeddings.weight")
	}
	root := weights.New(src, where)
	m := &Model{Config: cfg}
	var err error
	if m.Encoder, err = loadEncoder(cfg, root.Sub(p)); err != nil {
		return nil, err
	}
	if cfg.Task == arch.TaskBase {
		return m, nil
	}
	if m.Head, err = loadPredictionHead(cfg, root); err != nil {
		return nil, err
	}
	d, nl := cfg.HiddenSize, len(cfg.Labels)
	switch cfg.Task {
	case arch.TaskMaskedLM:
		m.Decoder, err = loadDecoder(cfg, root, m.Encoder.Embeddings.Tok.Table)
	case arch.TaskSequenceClassification, arch.TaskTokenClassification, arch.TaskQuestionAnswering:
		// The classifier Linear always has a bias (classifier_bias is the
		// head's dense layer's).
		m.Classifier, err = root.Linear("classifier", d, nl, true)
	}
	if err != nil {
		return nil, err
	}
	return m, nil
}

// Encode runs the encoder and the model's head on a batch.
func (m *Model) Encode(ctx context.Context, in *arch.EncoderInput, opt arch.EncodeOptions) (*arch.EncoderOutput, error) {
	if in == nil {
		return nil, errors.New("modernbert: nil input")
	}
	if err := m.guard.Acquire("modernbert"); err != nil {
		return nil, err
	}
	defer m.guard.Release()
	last, hidden, err := m.Encoder.Forward(ctx, in, opt.HiddenStates)
	if err != nil {
		return nil, err
	}
	out := &arch.EncoderOutput{LastHiddenState: last, HiddenStates: hidden}
	switch m.Config.Task {
	case arch.TaskMaskedLM:
		out.Logits = m.Decoder.Apply(m.Head.Forward(last))
	case arch.TaskSequenceClassification:
		pooled := pool(last, in.AttentionMask, m.Config.ClassifierPooling)
		out.Logits = m.Classifier.Apply(m.Head.Forward(pooled))
	case arch.TaskTokenClassification:
		out.Logits = m.Classifier.Apply(m.Head.Forward(last))
	case arch.TaskQuestionAnswering:
		se := m.Classifier.Apply(m.Head.Forward(last)).Float32s() // [N, 2]
		start, end := tensor.Zeros(in.Batch, in.Seq), tensor.Zeros(in.Batch, in.Seq)
		st, en := start.Float32s(), end.Float32s()
		for i := range st {
			st[i], en[i] = se[2*i], se[2*i+1]
		}
		out.StartLogits, out.EndLogits = start, end
	}
	for _, t := range []*tensor.Tensor{out.LastHiddenState, out.Logits, out.StartLogits, out.EndLogits} {
		if t != nil && hasNaN(t.Float32s()) {
			return nil, errors.New("modernbert: the forward pass produced NaN (corrupt weights?)")
		}
	}
	return out, nil
}

func hasNaN(xs []float32) bool {
	for _, v := range xs {
		if math.IsNaN(float64(v)) {
			return true
		}
	}
	return false
}
