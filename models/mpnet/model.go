// Package mpnet implements MPNet (transformers' modeling_mpnet.py) and its
// heads, loaded from Hugging Face checkpoints: the encoder behind
// sentence-transformers' all-mpnet-base-v2 among others.
//
// MPNet is a post-norm BERT-style encoder whose attention adds a relative
// position bias shared by every layer (encoder.relative_attention_bias,
// indexed by RelativeBucket), on top of RoBERTa-style absolute positions
// that start after the padding index. It has no token type embeddings.
//
// A Model is immutable after loading and safe for concurrent use; each
// Encode allocates its outputs and takes its scratch from a pool.
//
// Shapes in comments: B batch, S sequence length, N = B·S rows, D hidden
// size, I intermediate size, V vocabulary, H heads, Dh = D/H.
package mpnet

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

// Embeddings is MPNetEmbeddings: word + position embeddings, then
// LayerNorm.
type Embeddings struct {
	Word, Position *nn.Embedding
	Norm           *nn.LayerNorm
}

// Layer is MPNetLayer, a post-norm block: attention (with the shared
// relative position bias), add & norm, feed-forward, add & norm.
type Layer struct {
	// QKV is attn.q, attn.k and attn.v stacked into one [3D, D] projection.
	QKV      *nn.Linear
	AttnOut  *nn.Linear // attn.o
	AttnNorm *nn.LayerNorm
	Up, Down *nn.Linear
	OutNorm  *nn.LayerNorm
	Act      tensor.Activation
}

// Encoder is MPNetModel without its pooler: embeddings, layers and the
// relative position bias table [buckets, H] they share.
type Encoder struct {
	Config       *Config
	Embeddings   *Embeddings
	Layers       []*Layer
	RelativeBias []float32
	threads      tensor.Threads // LoadOptions.Threads, for the attention

	work sync.Pool // *workspace
}

func loadEncoder(cfg *Config, w *weights.Loader) (*Encoder, error) {
	d, in, eps := cfg.HiddenSize, cfg.IntermediateSize, cfg.LayerNormEps
	e := &Encoder{Config: cfg, Embeddings: &Embeddings{}, threads: w.Threads()}
	ew := w.Sub("embeddings")
	var err error
	if e.Embeddings.Word, err = ew.Embedding("word_embeddings", cfg.VocabSize, d); err != nil {
		return nil, err
	}
	if e.Embeddings.Position, err = ew.Embedding("position_embeddings", cfg.MaxPositionEmbeddings, d); err != nil {
		return nil, err
	}
	if e.Embeddings.Norm, err = ew.LayerNorm("LayerNorm", d, eps); err != nil {
		return nil, err
	}
	rb, err := w.F32("encoder.relative_attention_bias.weight", cfg.RelativeAttentionNumBuckets, cfg.NumAttentionHeads)
	if err != nil {
		return nil, err
	}
	e.RelativeBias = rb.Float32s()
	for i := 0; i < cfg.NumHiddenLayers; i++ {
		lw := w.Subf("encoder.layer.%d", i)
		l := &Layer{Act: cfg.Act}
		var q, k, v *nn.Linear
		for j, p := range []**nn.Linear{&q, &k, &v} {
			if *p, err = lw.UnpackedLinear("attention.attn."+"qkv"[j:j+1], d, d, true); err != nil {
				return nil, err
			}
		}
		if l.QKV, err = stackLinear(q, k, v); err != nil {
			return nil, fmt.Errorf("mpnet: layer %d attention: %w", i, err)
		}
		if l.AttnOut, err = lw.Linear("attention.attn.o", d, d, true); err != nil {
			return nil, err
		}
		if l.AttnNorm, err = lw.LayerNorm("attention.LayerNorm", d, eps); err != nil {
			return nil, err
		}
		if l.Up, err = lw.Linear("intermediate.dense", d, in, true); err != nil {
			return nil, err
		}
		if l.Down, err = lw.Linear("output.dense", in, d, true); err != nil {
			return nil, err
		}
		if l.OutNorm, err = lw.LayerNorm("output.LayerNorm", d, eps); err != nil {
			return nil, err
		}
		e.Layers = append(e.Layers, l)
	}
	return e, nil
}

// checkInput validates the input against the config.
func checkInput(in *arch.EncoderInput, cfg *Config) error {
	if in.Batch <= 0 || in.Seq <= 0 {
		return fmt.Errorf("mpnet: empty input (batch %d, sequence %d)", in.Batch, in.Seq)
	}
	if in.Seq > cfg.MaxPositions() {
		return fmt.Errorf("mpnet: sequence of %d tokens is longer than the model's %d positions (max_position_embeddings %d less the padding offset): %w",
			in.Seq, cfg.MaxPositions(), cfg.MaxPositionEmbeddings, arch.ErrTooLong)
	}
	n := in.Batch * in.Seq
	if n/in.Batch != in.Seq || len(in.InputIDs) != n {
		return fmt.Errorf("mpnet: %d input ids for batch %d × sequence %d", len(in.InputIDs), in.Batch, in.Seq)
	}
	if in.AttentionMask != nil && len(in.AttentionMask) != n {
		return fmt.Errorf("mpnet: attention mask has %d values for batch %d × sequence %d", len(in.AttentionMask), in.Batch, in.Seq)
	}
	for i, id := range in.InputIDs {
		if id < 0 || id >= cfg.VocabSize {
			return fmt.Errorf("mpnet: input id %d at sequence %d position %d is outside the vocabulary of %d", id, i/in.Seq, i%in.Seq, cfg.VocabSize)
		}
	}
	for i, m := range in.AttentionMask {
		if m != 0 && m != 1 {
			return fmt.Errorf("mpnet: attention mask value %d at sequence %d position %d (want 0 or 1)", m, i/in.Seq, i%in.Seq)
		}
	}
	return nil
}

// positionIDs is create_position_ids_from_input_ids: tokens other than the
// padding index count up from PaddingIdx + 1 within each sequence; padding
// tokens get PaddingIdx. It follows the ids, not the attention mask.
func positionIDs(in *arch.EncoderInput, dst []int) []int {
	pos := dst[:in.Batch*in.Seq]
	for b := 0; b < in.Batch; b++ {
		count := 0
		for s := 0; s < in.Seq; s++ {
			i := b*in.Seq + s
			if in.InputIDs[i] == PaddingIdx {
				pos[i] = PaddingIdx
				continue
			}
			count++
			pos[i] = PaddingIdx + count
		}
	}
	return pos
}

// Forward runs the encoder: the last hidden state [B, S, D] and, with
// allHidden, the L+1 hidden states (embeddings output, then each layer's).
func (e *Encoder) Forward(ctx context.Context, in *arch.EncoderInput, allHidden bool) (last *tensor.Tensor, hidden []*tensor.Tensor, err error) {
	cfg := e.Config
	if err := checkInput(in, cfg); err != nil {
		return nil, nil, err
	}
	n, d := in.Batch*in.Seq, cfg.HiddenSize
	ws := e.workspace(in.Batch, in.Seq)
	defer e.work.Put(ws)
	x := tensor.Zeros(n, d)
	if err := e.Embeddings.Word.Forward(x, in.InputIDs); err != nil {
		return nil, nil, fmt.Errorf("mpnet: %w", err)
	}
	if err := e.Embeddings.Position.AddTo(x, positionIDs(in, ws.pos)); err != nil {
		return nil, nil, fmt.Errorf("mpnet: position %w", err)
	}
	e.Embeddings.Norm.Forward(x, x)
	if allHidden {
		hidden = append(hidden, x.Clone().Reshape(in.Batch, in.Seq, d))
	}
	p := attnParams{
		batch: in.Batch, seq: in.Seq, heads: cfg.NumAttentionHeads, headDim: cfg.HeadDim(),
		threads: e.threads,
		// compute_position_bias: once per forward, shared by every layer.
		relBias: relativeBias(ws.rel, e.RelativeBias, cfg.NumAttentionHeads, in.Seq),
		keyBias: nn.MaskBiasInto(ws.mask, in.AttentionMask),
	}
	for _, l := range e.Layers {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		l.forward(x, &ws.buffers, p)
		if allHidden {
			hidden = append(hidden, x.Clone().Reshape(in.Batch, in.Seq, d))
		}
	}
	return x.Reshape(in.Batch, in.Seq, d), hidden, nil
}

// buffers are one call's scratch activations, reused by every layer.
type buffers struct {
	qkv      *tensor.Tensor // [N, 3D]
	ctx, tmp *tensor.Tensor // [N, D]
	inter    *tensor.Tensor // [N, I]
}

// workspace is one Forward call's scratch: the layer buffers, position ids,
// key mask and relative bias rows. Its arrays are reused by later calls of
// any size they can hold.
type workspace struct {
	n, seq int
	buffers
	pos       []int
	mask, rel []float32
}

func (e *Encoder) workspace(batch, seq int) *workspace {
	ws, _ := e.work.Get().(*workspace)
	if ws == nil {
		ws = new(workspace)
	}
	n := batch * seq
	if ws.n == n && ws.seq == seq && ws.qkv != nil {
		return ws
	}
	cfg := e.Config
	d := cfg.HiddenSize
	ws.n, ws.seq = n, seq
	ws.qkv = reuse(ws.qkv, n, 3*d)
	ws.ctx = reuse(ws.ctx, n, d)
	ws.tmp = reuse(ws.tmp, n, d)
	ws.inter = reuse(ws.inter, n, cfg.IntermediateSize)
	if cap(ws.pos) < n {
		ws.pos, ws.mask = make([]int, n), make([]float32, n)
	}
	if w := cfg.NumAttentionHeads * (2*seq - 1); cap(ws.rel) < w {
		ws.rel = make([]float32, w)
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

// forward updates x [N, D] in place through one block (MPNetLayer).
func (l *Layer) forward(x *tensor.Tensor, b *buffers, p attnParams) {
	l.QKV.Forward(b.qkv, x)
	attention(b.ctx.Float32s(), b.qkv.Float32s(), p)
	// x = LayerNorm(x + (ctx·Woᵀ + bo))
	l.AttnOut.ForwardNoBias(b.tmp, b.ctx)
	l.AttnNorm.AddNorm(x, x, b.tmp, l.AttnOut.B)
	// x = LayerNorm(x + (act(x·Wupᵀ + bup)·Wdownᵀ + bdown))
	l.Up.ForwardAct(b.inter, x, l.Act)
	l.Down.ForwardNoBias(b.tmp, b.inter)
	l.OutNorm.AddNorm(x, x, b.tmp, l.Down.B)
}

// stackLinear stacks Linear layers of one input width into one whose output
// is their outputs side by side, in the first one's storage precision
// (float32 when they differ).
func stackLinear(ls ...*nn.Linear) (*nn.Linear, error) {
	in, out := ls[0].In(), 0
	dt := ls[0].W.DType()
	for _, l := range ls {
		out += l.Out()
		if l.W.DType() != dt {
			dt = tensor.F32
		}
	}
	w := tensor.New(dt, out, in)
	b := tensor.Zeros(out)
	row := 0
	for _, l := range ls {
		src := l.W
		if src.DType() != dt {
			src = src.ToFloat32()
		}
		n := l.Out() * in
		if dt == tensor.F32 {
			copy(w.Float32s()[row*in:], src.Float32s()[:n])
		} else {
			copy(w.Uint16s()[row*in:], src.Uint16s()[:n])
		}
		if l.B != nil {
			copy(b.Float32s()[row:], l.B.Float32s())
		}
		row += l.Out()
	}
	lin := &nn.Linear{W: w, B: b, Threads: ls[0].Threads}
	lin.SetPrecision(ls[0].Precision())
	return lin, lin.Pack()
}

// Model is MPNet with the head its config.json names.
type Model struct {
	Config  *Config
	Encoder *Encoder
	// Pooler is MPNetPooler: present for a base model whose checkpoint has
	// one (sentence-transformers checkpoints usually do); nil otherwise.
	Pooler *Pooler
	// At most one head is set, according to Config.Task.
	MLM        *LMHead
	Classifier *ClassificationHead
	TokenCls   *nn.Linear // [labels, D]
	QA         *nn.Linear // [2, D]

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
		return nil, fmt.Errorf("mpnet: %w", err)
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
// in errors. Base-model weights are accepted with or without the "mpnet."
// prefix.
func New(cfg *Config, src weights.Source, where string) (*Model, error) {
	p, ok := weights.FirstPrefix(src, "embeddings.word_embeddings.weight", "mpnet", "")
	if !ok {
		return nil, fmt.Errorf("%s: missing tensor %q (nor without the \"mpnet.\" prefix)", where, "mpnet.embeddings.word_embeddings.weight")
	}
	root := weights.New(src, where)
	w := root.Sub(p)
	m := &Model{Config: cfg}
	var err error
	if m.Encoder, err = loadEncoder(cfg, w); err != nil {
		return nil, err
	}
	d, nl := cfg.HiddenSize, len(cfg.Labels)
	if cfg.Task == arch.TaskBase && w.Has("pooler.dense.weight") {
		if m.Pooler, err = loadPooler(w, d); err != nil {
			return nil, err
		}
	}
	switch cfg.Task {
	case arch.TaskMaskedLM:
		m.MLM, err = loadLMHead(cfg, root, m.Encoder.Embeddings.Word.Table)
	case arch.TaskSequenceClassification:
		m.Classifier, err = loadClassificationHead(root, d, nl)
	case arch.TaskTokenClassification:
		m.TokenCls, err = root.Linear("classifier", d, nl, true)
	case arch.TaskQuestionAnswering:
		m.QA, err = root.Linear("qa_outputs", d, 2, true)
	}
	if err != nil {
		return nil, err
	}
	return m, nil
}

// Encode runs the encoder and the model's head on a batch.
func (m *Model) Encode(ctx context.Context, in *arch.EncoderInput, opt arch.EncodeOptions) (*arch.EncoderOutput, error) {
	if in == nil {
		return nil, errors.New("mpnet: nil input")
	}
	if err := m.guard.Acquire("mpnet"); err != nil {
		return nil, err
	}
	defer m.guard.Release()
	last, hidden, err := m.Encoder.Forward(ctx, in, opt.HiddenStates)
	if err != nil {
		return nil, err
	}
	out := &arch.EncoderOutput{LastHiddenState: last, HiddenStates: hidden}
	if m.Pooler != nil {
		out.PoolerOutput = m.Pooler.Forward(last)
	}
	switch m.Config.Task {
	case arch.TaskMaskedLM:
		out.Logits = m.MLM.Forward(last)
	case arch.TaskSequenceClassification:
		out.Logits = m.Classifier.Forward(last)
	case arch.TaskTokenClassification:
		out.Logits = m.TokenCls.Apply(last)
	case arch.TaskQuestionAnswering:
		se := m.QA.Apply(last).Float32s() // [N, 2]
		start, end := tensor.Zeros(in.Batch, in.Seq), tensor.Zeros(in.Batch, in.Seq)
		st, en := start.Float32s(), end.Float32s()
		for i := range st {
			st[i], en[i] = se[2*i], se[2*i+1]
		}
		out.StartLogits, out.EndLogits = start, end
	}
	for _, t := range []*tensor.Tensor{out.LastHiddenState, out.Logits, out.StartLogits} {
		if t != nil && hasNaN(t.Float32s()) {
			return nil, errors.New("mpnet: the forward pass produced NaN (corrupt weights?)")
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
