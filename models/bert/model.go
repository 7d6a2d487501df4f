// Package bert implements the BERT family of encoders (BERT, RoBERTa,
// DistilBERT) and the heads people download them for, loaded from Hugging
// Face checkpoints. It mirrors transformers' modeling_bert.py,
// modeling_roberta.py and modeling_distilbert.py: one type per module, loaded
// from a scoped weight loader so the tensor names fall out of the structure.
//
// A Model is immutable after loading and safe for concurrent use; each
// Forward call allocates its outputs and takes its scratch activations from
// a pool that concurrent calls do not share.
//
// Shapes in comments: B batch, S sequence length, N = B·S rows, D hidden size,
// I intermediate size, V vocabulary, H heads.
package bert

import (
	"context"
	"errors"
	"fmt"
	"github.com/embrace-go/embrace/hfdir"
	"github.com/embrace-go/embrace/models/arch"
	"math"
	"sync"

	"github.com/embrace-go/embrace/models/weights"
	"github.com/embrace-go/embrace/nn"
	"github.com/embrace-go/embrace/tensor"
)

// Embeddings is BertEmbeddings / RobertaEmbeddings / DistilBERT's Embeddings:
// word + position (+ token type) embeddings, then LayerNorm.
type Embeddings struct {
	Word, Position *nn.Embedding
	TokenType      *nn.Embedding // nil for DistilBERT
	Norm           *nn.LayerNorm
}

// Layer is one post-norm transformer block (BertLayer, DistilBERT's
// TransformerBlock): attention, add & norm, feed-forward, add & norm.
type Layer struct {
	// QKV is the checkpoint's query, key and value stacked into one [3D, D]
	// projection, so a layer makes one matrix product instead of three.
	QKV      *nn.Linear
	AttnOut  *nn.Linear
	AttnNorm *nn.LayerNorm
	Up, Down *nn.Linear
	OutNorm  *nn.LayerNorm
	Act      tensor.Activation // of the feed-forward block
}

// Encoder is the base model without a pooler: embeddings and layers.
type Encoder struct {
	Config     *Config
	Embeddings *Embeddings
	Layers     []*Layer

	// work recycles the scratch of finished Forward calls (*workspace):
	// concurrent calls each take their own, and a stream of calls allocates
	// only its outputs.
	work sync.Pool
}

func loadEncoder(cfg *Config, w *weights.Loader) (*Encoder, error) {
	d, in := cfg.HiddenSize, cfg.IntermediateSize
	eps := cfg.LayerNormEps
	e := &Encoder{Config: cfg, Embeddings: &Embeddings{}}
	ew := w.Sub("embeddings")
	var err error
	if e.Embeddings.Word, err = ew.Embedding("word_embeddings", cfg.VocabSize, d); err != nil {
		return nil, err
	}
	if e.Embeddings.Position, err = ew.Embedding("position_embeddings", cfg.MaxPositionEmbeddings, d); err != nil {
		return nil, err
	}
	if cfg.TypeVocabSize > 0 {
		if e.Embeddings.TokenType, err = ew.Embedding("token_type_embeddings", cfg.TypeVocabSize, d); err != nil {
			return nil, err
		}
	}
	if e.Embeddings.Norm, err = ew.LayerNorm("LayerNorm", d, eps); err != nil {
		return nil, err
	}
	for i := 0; i < cfg.NumHiddenLayers; i++ {
		l := &Layer{Act: cfg.Act}
		var names [8]string
		var lw *weights.Loader
		if cfg.Family == DistilBERT {
			lw = w.Subf("transformer.layer.%d", i)
			names = [8]string{"attention.q_lin", "attention.k_lin", "attention.v_lin", "attention.out_lin",
				"sa_layer_norm", "ffn.lin1", "ffn.lin2", "output_layer_norm"}
		} else {
			lw = w.Subf("encoder.layer.%d", i)
			names = [8]string{"attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
				"attention.output.LayerNorm", "intermediate.dense", "output.dense", "output.LayerNorm"}
		}
		var q, k, v *nn.Linear
		for j, p := range []**nn.Linear{&q, &k, &v} {
			if *p, err = lw.UnpackedLinear(names[j], d, d, true); err != nil {
				return nil, err
			}
		}
		if l.QKV, err = stackLinear(q, k, v); err != nil {
			return nil, fmt.Errorf("layer %d attention: %w", i, err)
		}
		if l.AttnOut, err = lw.Linear(names[3], d, d, true); err != nil {
			return nil, err
		}
		if l.AttnNorm, err = lw.LayerNorm(names[4], d, eps); err != nil {
			return nil, err
		}
		if l.Up, err = lw.Linear(names[5], d, in, true); err != nil {
			return nil, err
		}
		if l.Down, err = lw.Linear(names[6], in, d, true); err != nil {
			return nil, err
		}
		if l.OutNorm, err = lw.LayerNorm(names[7], d, eps); err != nil {
			return nil, err
		}
		e.Layers = append(e.Layers, l)
	}
	return e, nil
}

// check validates the input against the config.
func checkInput(in *arch.EncoderInput, cfg *Config) error {
	n := in.Batch * in.Seq
	if in.Batch <= 0 || in.Seq <= 0 {
		return fmt.Errorf("bert: empty input (batch %d, sequence %d)", in.Batch, in.Seq)
	}
	if len(in.InputIDs) != n {
		return fmt.Errorf("bert: %d input ids for batch %d × sequence %d", len(in.InputIDs), in.Batch, in.Seq)
	}
	if in.AttentionMask != nil && len(in.AttentionMask) != n {
		return fmt.Errorf("bert: attention mask has %d values for batch %d × sequence %d", len(in.AttentionMask), in.Batch, in.Seq)
	}
	if in.TokenTypeIDs != nil && len(in.TokenTypeIDs) != n {
		return fmt.Errorf("bert: token type ids have %d values for batch %d × sequence %d", len(in.TokenTypeIDs), in.Batch, in.Seq)
	}
	limit := cfg.MaxPositionEmbeddings
	if cfg.Family == RoBERTa {
		limit -= cfg.PadTokenID + 1 // positions start after the padding index
	}
	if in.Seq > limit {
		return fmt.Errorf("bert: sequence of %d tokens is longer than the model's %d positions (max_position_embeddings): %w", in.Seq, limit, arch.ErrTooLong)
	}
	for i, id := range in.InputIDs {
		if id < 0 || id >= cfg.VocabSize {
			return fmt.Errorf("bert: input id %d at sequence %d position %d is outside the vocabulary of %d", id, i/in.Seq, i%in.Seq, cfg.VocabSize)
		}
	}
	for i, m := range in.AttentionMask {
		if m != 0 && m != 1 {
			return fmt.Errorf("bert: attention mask value %d at sequence %d position %d (want 0 or 1)", m, i/in.Seq, i%in.Seq)
		}
	}
	if cfg.Family != DistilBERT {
		for i, t := range in.TokenTypeIDs {
			if t < 0 || t >= max(cfg.TypeVocabSize, 1) {
				return fmt.Errorf("bert: token type id %d at sequence %d position %d is outside 0..%d", t, i/in.Seq, i%in.Seq, max(cfg.TypeVocabSize, 1)-1)
			}
		}
	}
	return nil
}

// positionIDs writes the position of every token into pos: 0..S-1 for BERT
// and DistilBERT; for RoBERTa, padding_idx+1 onwards counted over non-pad
// tokens only (pads keep padding_idx), as create_position_ids_from_input_ids
// does.
func (e *Encoder) positionIDs(in *arch.EncoderInput, pos []int) []int {
	pos = pos[:len(in.InputIDs)]
	pad := e.Config.PadTokenID
	for b := 0; b < in.Batch; b++ {
		row := in.InputIDs[b*in.Seq : (b+1)*in.Seq]
		count := 0
		for s, id := range row {
			switch {
			case e.Config.Family != RoBERTa:
				pos[b*in.Seq+s] = s
			case id == pad:
				pos[b*in.Seq+s] = pad
			default:
				count++
				pos[b*in.Seq+s] = pad + count
			}
		}
	}
	return pos
}

// Forward runs the encoder: x [B, S, D] is the last hidden state. With
// allHidden it also returns the L+1 hidden states (embeddings output, then
// each layer's), as output_hidden_states=True does.
func (e *Encoder) Forward(ctx context.Context, in *arch.EncoderInput, allHidden bool) (last *tensor.Tensor, hidden []*tensor.Tensor, err error) {
	cfg := e.Config
	if err := checkInput(in, cfg); err != nil {
		return nil, nil, err
	}
	n, d := in.Batch*in.Seq, cfg.HiddenSize
	ws := e.workspace(n)
	defer e.work.Put(ws)
	// Embeddings: x [N, D] = word + position (+ type), then LayerNorm.
	x := tensor.Zeros(n, d)
	if err := e.Embeddings.Word.Forward(x, in.InputIDs); err != nil {
		return nil, nil, fmt.Errorf("bert: %w", err)
	}
	if err := e.Embeddings.Position.AddTo(x, e.positionIDs(in, ws.pos)); err != nil {
		return nil, nil, fmt.Errorf("bert: position %w", err)
	}
	if e.Embeddings.TokenType != nil {
		types := in.TokenTypeIDs
		if types == nil {
			types = ws.types[:n]
			clear(types)
		}
		if err := e.Embeddings.TokenType.AddTo(x, types); err != nil {
			return nil, nil, fmt.Errorf("bert: token type %w", err)
		}
	}
	e.Embeddings.Norm.Forward(x, x)
	if allHidden {
		hidden = append(hidden, x.Clone().Reshape(in.Batch, in.Seq, d))
	}
	bias := nn.MaskBiasInto(ws.bias, in.AttentionMask)
	for _, l := range e.Layers {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		l.forward(x, &ws.buffers, in.Batch, in.Seq, cfg.NumAttentionHeads, bias)
		if allHidden {
			hidden = append(hidden, x.Clone().Reshape(in.Batch, in.Seq, d))
		}
	}
	return x.Reshape(in.Batch, in.Seq, d), hidden, nil
}

// workspace is one Forward call's scratch for N rows: the layer buffers and
// the per-token rows. Its backing arrays are reused by later calls of any
// size they can hold.
type workspace struct {
	n int // rows the tensors are shaped for
	buffers
	pos, types []int
	bias       []float32
}

// workspace takes a recycled workspace (or a new one) and shapes it for n
// rows.
func (e *Encoder) workspace(n int) *workspace {
	ws, _ := e.work.Get().(*workspace)
	if ws == nil {
		ws = new(workspace)
	}
	if ws.n == n && ws.qkv != nil {
		return ws
	}
	cfg := e.Config
	d, inner := cfg.HiddenSize, cfg.IntermediateSize
	ws.n = n
	ws.qkv = reuse(ws.qkv, n, 3*d)
	ws.ctx = reuse(ws.ctx, n, d)
	ws.tmp = reuse(ws.tmp, n, d)
	ws.inter = reuse(ws.inter, n, inner)
	if cap(ws.pos) < n {
		ws.pos, ws.types, ws.bias = make([]int, n), make([]int, n), make([]float32, n)
	}
	return ws
}

// reuse returns a [rows, cols] tensor on t's backing array when it is large
// enough, else a new one. The contents are not cleared: every buffer is
// written in full before it is read.
func reuse(t *tensor.Tensor, rows, cols int) *tensor.Tensor {
	if t != nil {
		if s := t.Float32s(); cap(s) >= rows*cols {
			return tensor.FromFloat32(s[:rows*cols], rows, cols)
		}
	}
	return tensor.Zeros(rows, cols)
}

// stackLinear stacks Linear layers of one input width and weight dtype into
// one whose output is their outputs side by side.
func stackLinear(ls ...*nn.Linear) (*nn.Linear, error) {
	in, out := ls[0].In(), 0
	for _, l := range ls {
		out += l.Out()
		if l.W.DType() != ls[0].W.DType() {
			// Mixed storage: stack in float32.
			for i, m := range ls {
				ls[i] = &nn.Linear{W: m.W.ToFloat32(), B: m.B, Threads: m.Threads}
			}
			return stackLinear(ls...)
		}
	}
	w := tensor.New(ls[0].W.DType(), out, in)
	b := tensor.Zeros(out)
	row := 0
	for _, l := range ls {
		n := l.Out() * in
		switch w.DType() {
		case tensor.F32:
			copy(w.Float32s()[row*in:], l.W.Float32s()[:n])
		default: // F16, BF16
			copy(w.Uint16s()[row*in:], l.W.Uint16s()[:n])
		}
		copy(b.Float32s()[row:], l.B.Float32s())
		row += l.Out()
	}
	lin := &nn.Linear{W: w, B: b, Threads: ls[0].Threads}
	lin.SetPrecision(ls[0].Precision()) // the loader's choice for Q, K and V
	return lin, lin.Pack()
}

// buffers are one call's scratch activations, reused by every layer.
type buffers struct {
	qkv      *tensor.Tensor // [N, 3D]
	ctx, tmp *tensor.Tensor // [N, D]
	inter    *tensor.Tensor // [N, I]
}

// forward updates x [N, D] in place through one block. The biases of the
// attention output, up and down projections are added in the pass that
// follows each product (residual add and norm, activation).
func (l *Layer) forward(x *tensor.Tensor, b *buffers, batch, seq, heads int, keyBias []float32) {
	d := x.Dim(-1)
	// Self-attention: ctx [N, D] = softmax(q·kᵀ/√Dh + mask)·v per head.
	// qkv [N, 3D] holds q, k and v side by side in each row.
	l.QKV.Forward(b.qkv, x)
	qkv := b.qkv.Float32s()
	nn.SelfAttention(l.QKV.Threads, b.ctx.Float32s(), qkv, qkv[d:], qkv[2*d:], 3*d, 3*d, 3*d,
		batch, seq, heads, d/heads, keyBias, false)
	// x = LayerNorm(x + (ctx·Woᵀ + bo))
	l.AttnOut.ForwardNoBias(b.tmp, b.ctx)
	l.AttnNorm.AddNorm(x, x, b.tmp, l.AttnOut.B)
	// x = LayerNorm(x + (act(x·Wupᵀ + bup)·Wdownᵀ + bdown))
	l.Up.ForwardAct(b.inter, x, l.Act)
	l.Down.ForwardNoBias(b.tmp, b.inter)
	l.OutNorm.AddNorm(x, x, b.tmp, l.Down.B)
}

// Model is an encoder with the head its config.json names.
type Model struct {
	Config  *Config
	Encoder *Encoder
	// Pooler is present for BERT-style base models and the heads that use it
	// (pre-training, BERT sequence classification); nil otherwise.
	Pooler *Pooler
	// Exactly one of the heads below is set, according to Config.Task (none
	// for arch.TaskBase).
	MLM        *MLMHead
	NSP        *nn.Linear // pre-training's next-sentence classifier [2, D]
	Classifier *ClassificationHead
	TokenCls   *nn.Linear // [labels, D]
	QA         *nn.Linear // [2, D]

	closer func() error
	guard  arch.Guard
}

// Load reads a checkpoint folder as a user downloads it: config.json, then
// model.safetensors or a sharded model.safetensors.index.json. The head comes
// from config.json's architectures.
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
	cfg, err := ParseConfig(hc.Data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", hc.Path, err)
	}
	ckpt, src, err := weights.Open(f, opt)
	if err != nil {
		return nil, fmt.Errorf("bert: %w", err)
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
// in errors. Weight names are accepted with or without the base model's
// prefix ("bert.", "roberta.", "distilbert.").
func New(cfg *Config, src weights.Source, where string) (*Model, error) {
	base := string(cfg.Family)
	p, ok := weights.FirstPrefix(src, "embeddings.word_embeddings.weight", base, "")
	if !ok {
		return nil, fmt.Errorf("%s: missing tensor %q (nor without the %q prefix)", where, base+".embeddings.word_embeddings.weight", base+".")
	}
	root := weights.New(src, where)
	w := root.Sub(p)
	m := &Model{Config: cfg}
	var err error
	if m.Encoder, err = loadEncoder(cfg, w); err != nil {
		return nil, err
	}
	d := cfg.HiddenSize
	needPooler := cfg.Family == BERT && (cfg.Task == arch.TaskPreTraining || cfg.Task == arch.TaskSequenceClassification)
	if needPooler || (cfg.Task == arch.TaskBase && w.Has("pooler.dense.weight")) {
		if m.Pooler, err = loadPooler(w, d); err != nil {
			return nil, err
		}
	}
	nl := len(cfg.Labels)
	switch cfg.Task {
	case arch.TaskMaskedLM, arch.TaskPreTraining:
		if m.MLM, err = loadMLMHead(cfg, root, m.Encoder.Embeddings.Word.Table); err != nil {
			return nil, err
		}
		if cfg.Task == arch.TaskPreTraining {
			if m.NSP, err = root.Linear("cls.seq_relationship", d, 2, true); err != nil {
				return nil, err
			}
		}
	case arch.TaskSequenceClassification:
		if m.Classifier, err = loadClassificationHead(cfg, root); err != nil {
			return nil, err
		}
	case arch.TaskTokenClassification:
		if m.TokenCls, err = root.Linear("classifier", d, nl, true); err != nil {
			return nil, err
		}
	case arch.TaskQuestionAnswering:
		if m.QA, err = root.Linear("qa_outputs", d, 2, true); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Encode runs the encoder and the model's head on a batch.
func (m *Model) Encode(ctx context.Context, in *arch.EncoderInput, opt arch.EncodeOptions) (*arch.EncoderOutput, error) {
	if in == nil {
		return nil, errors.New("bert: nil input")
	}
	if err := m.guard.Acquire("bert"); err != nil {
		return nil, err
	}
	defer m.guard.Release()
	last, hidden, err := m.Encoder.Forward(ctx, in, opt.HiddenStates)
	if err != nil {
		return nil, err
	}
	out := &arch.EncoderOutput{LastHiddenState: last, HiddenStates: hidden}
	b, s := in.Batch, in.Seq
	if m.Pooler != nil {
		out.PoolerOutput = m.Pooler.Forward(last)
	}
	switch m.Config.Task {
	case arch.TaskMaskedLM:
		out.Logits = m.MLM.Forward(last)
	case arch.TaskPreTraining:
		out.PredictionLogits = m.MLM.Forward(last)
		out.SeqRelationshipLogits = m.NSP.Apply(out.PoolerOutput)
	case arch.TaskSequenceClassification:
		out.Logits = m.Classifier.Forward(last, out.PoolerOutput)
	case arch.TaskTokenClassification:
		out.Logits = m.TokenCls.Apply(last)
	case arch.TaskQuestionAnswering:
		se := m.QA.Apply(last).Float32s() // [N, 2]
		start, end := tensor.Zeros(b, s), tensor.Zeros(b, s)
		st, en := start.Float32s(), end.Float32s()
		for i := range st {
			st[i], en[i] = se[2*i], se[2*i+1]
		}
		out.StartLogits, out.EndLogits = start, end
	}
	for _, t := range []*tensor.Tensor{out.Logits, out.PredictionLogits, out.StartLogits} {
		if t != nil && hasNaN(t.Float32s()) {
			return nil, fmt.Errorf("bert: the forward pass produced NaN (corrupt weights?)")
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
