// Package arch is the contract between the architecture packages
// (models/bert, models/gpt2, ...) and everything above them: the
// registration an architecture makes, the capability interfaces a loaded
// model implements, and their inputs and outputs.
//
// A model is used through what it can do, never through its concrete type:
// an Encoder maps token ids to hidden states and the head's outputs; a
// CausalLM decodes with a KV cache. The generate, pipeline and serve
// packages, the conformance runner and the benchmarks use only these
// interfaces, so a new architecture is a new package and one registration
// line in package models.
//
// arch imports only tensor and hfdir, so architecture packages can import it
// without a cycle through models.
package arch

import (
	"context"
	"errors"
	"fmt"

	"github.com/embrace-go/embrace/hfdir"
	"github.com/embrace-go/embrace/tensor"
)

// ErrUnsupported is wrapped by every error that reports something the
// library does not implement (an architecture, a head, a config value), so
// callers can tell "not supported" from "broken" with errors.Is. It also
// matches the standard library's errors.ErrUnsupported, which the
// tokenizer's "unsupported" errors match too: errors.Is(err,
// errors.ErrUnsupported) finds every one of them.
var ErrUnsupported error = unsupported{}

type unsupported struct{}

func (unsupported) Error() string { return "unsupported" }

// Is makes errors.Is(err, errors.ErrUnsupported) true.
func (unsupported) Is(target error) bool { return target == errors.ErrUnsupported }

// ErrTooLong is wrapped by the errors for inputs longer than the model's
// positions.
var ErrTooLong = errors.New("too long")

// ErrClosed is returned by calls on a model after its Close.
var ErrClosed = errors.New("model is closed")

// Registration is what an architecture package declares: the model_type
// values it loads and how.
type Registration struct {
	// Name is the package's name, for listings ("bert").
	Name string
	// ModelTypes are the config.json model_type values it loads.
	ModelTypes []string
	// Task reads the head from config.json without loading weights; it
	// fails with ErrUnsupported for an architectures entry the package
	// cannot run.
	Task func(cfg *hfdir.Config) (Task, error)
	// Load builds the model from the folder's metadata and weights.
	Load func(f *hfdir.Folder, opt LoadOptions) (Model, error)
}

// LoadOptions are the choices made when a model is loaded. The zero value
// is the default: weights kept in their stored precision, float32 compute.
// An architecture hands them to its weight loader (weights.WithOptions);
// embeddings and norms are never reduced.
type LoadOptions struct {
	// Quantize stores the Linear weights reduced (QuantizeQ8), the LM head
	// included unless KeepHead is set.
	Quantize Quantization
	// Compute chooses the arithmetic of the Linear products that Quantize
	// leaves alone (ComputeBF16).
	Compute Compute
	// KeepHead keeps the LM head (the output projection to the vocabulary)
	// out of Quantize, for the last bit of accuracy in the logits.
	KeepHead bool
	// Threads bounds the goroutines one call on the model runs on: its
	// matrix products, attention, norms and element-wise passes split over
	// at most Threads goroutines of tensor's shared worker pool, the caller
	// included (tensor.Threads). Zero means runtime.GOMAXPROCS(0) at each
	// call; a larger value counts as GOMAXPROCS. Calls from several
	// goroutines each get their own share, so a service that serves one
	// model from N goroutines at Threads: 1 uses up to N cores. Loading
	// itself (packing and quantizing weights) still uses every processor.
	Threads int
}

// Quantization is a storage format for Linear weights (LoadOptions.Quantize).
type Quantization string

const (
	// QuantizeNone keeps weights in their stored precision.
	QuantizeNone Quantization = ""
	// QuantizeQ8 stores each Linear weight as int8 in blocks of 32 inputs
	// with one half-precision scale a block (34 bytes per 32 weights, as
	// llama.cpp's Q8_0), quantized at load from F32, F16 or BF16; products
	// quantize their activations the same way and sum in integers
	// (AVX-512 VNNI where the CPU has it). Decoding reads a quarter of the
	// bytes of F32 weights.
	QuantizeQ8 Quantization = "q8"
)

// Compute is the arithmetic of matrix products (LoadOptions.Compute).
type Compute string

const (
	// ComputeF32 multiplies in float32 (weights widened as they are read).
	ComputeF32 Compute = ""
	// ComputeBF16 rounds weights (at load) and activations (per product)
	// to bfloat16 and multiplies pairs with float32 accumulation, where
	// the CPU has AVX512_BF16 (tensor.BF16Compute reports it); elsewhere
	// products stay float32.
	ComputeBF16 Compute = "bf16"
)

// Validate reports an option value this version does not know, as an
// error wrapping ErrUnsupported.
func (o LoadOptions) Validate() error {
	if o.Threads < 0 {
		return fmt.Errorf("threads %d: want 0 (all processors) or more", o.Threads)
	}
	switch o.Quantize {
	case QuantizeNone, QuantizeQ8:
	default:
		return fmt.Errorf("%w: quantization %q (want %q or none)", ErrUnsupported, o.Quantize, QuantizeQ8)
	}
	switch o.Compute {
	case ComputeF32, ComputeBF16:
	default:
		return fmt.Errorf("%w: compute %q (want %q or none)", ErrUnsupported, o.Compute, ComputeBF16)
	}
	return nil
}

// Model is a loaded checkpoint. Every Model is safe for concurrent use and
// implements at least one of the capability interfaces below.
type Model interface {
	// Info describes the model.
	Info() Info
	// Close releases the weights. Calls made after Close return ErrClosed;
	// Close waits for the calls in flight.
	Close() error
}

// Info is what every model reports about itself.
type Info struct {
	// Arch is the registering package's name; ModelType config.json's
	// model_type; Architectures its architectures list.
	Arch, ModelType string
	Architectures   []string
	// Task is the head.
	Task Task
	// HiddenSize is the width of hidden states; VocabSize the token
	// vocabulary.
	HiddenSize, VocabSize int
	// MaxPositions is the longest sequence the model accepts (for
	// RoBERTa-style position ids, the table size less the padding offset);
	// 0 means no limit.
	MaxPositions int
	// Labels are the class names of a classification head, by id.
	Labels []string
	// PadTokenID is the id used to pad batches (config.json pad_token_id, or
	// 0).
	PadTokenID int
}

// Task is a model's head, named as Hugging Face's pipelines and Auto
// classes name them.
type Task string

// The heads.
const (
	TaskBase                   Task = "base"                    // AutoModel: hidden states (and pooler)
	TaskMaskedLM               Task = "masked-lm"               // AutoModelForMaskedLM
	TaskPreTraining            Task = "pre-training"            // BertForPreTraining: MLM + next sentence
	TaskSequenceClassification Task = "sequence-classification" // AutoModelForSequenceClassification
	TaskTokenClassification    Task = "token-classification"    // AutoModelForTokenClassification
	TaskQuestionAnswering      Task = "question-answering"      // AutoModelForQuestionAnswering
	TaskCausalLM               Task = "causal-lm"               // AutoModelForCausalLM
)

// Encoder is a model that maps a batch of token sequences to hidden states
// and its head's outputs in one pass (BERT, RoBERTa, a decoder's base model
// used for embeddings).
type Encoder interface {
	Model
	// Encode runs the model and its head on a batch.
	Encode(ctx context.Context, in *EncoderInput, opt EncodeOptions) (*EncoderOutput, error)
}

// EncoderInput is a batch of token sequences padded to one length.
type EncoderInput struct {
	Batch, Seq int
	// InputIDs holds Batch·Seq token ids, row-major.
	InputIDs []int
	// AttentionMask holds Batch·Seq values, 1 for real tokens and 0 for
	// padding; nil means every token is real.
	AttentionMask []int
	// TokenTypeIDs holds Batch·Seq segment ids; nil means all 0. Models
	// without segment embeddings ignore it.
	TokenTypeIDs []int
}

// EncodeOptions choose the optional outputs.
type EncodeOptions struct {
	// HiddenStates asks for every layer's output (output_hidden_states).
	HiddenStates bool
}

// EncoderOutput holds what a pass computed; fields the head does not produce
// are nil. Names follow transformers' output classes.
type EncoderOutput struct {
	LastHiddenState *tensor.Tensor   // [B, S, D]
	HiddenStates    []*tensor.Tensor // L+1 × [B, S, D] when requested
	PoolerOutput    *tensor.Tensor   // [B, D] when the model has a pooler
	// Logits: [B, S, V] (masked LM), [B, labels] (sequence classification)
	// or [B, S, labels] (token classification).
	Logits                *tensor.Tensor
	PredictionLogits      *tensor.Tensor // [B, S, V] (pre-training)
	SeqRelationshipLogits *tensor.Tensor // [B, 2] (pre-training)
	StartLogits           *tensor.Tensor // [B, S] (question answering)
	EndLogits             *tensor.Tensor // [B, S] (question answering)
}

// Named returns the outputs by their Hugging Face names ("logits",
// "hidden_states.0", ...), leaving out the ones not computed.
func (o *EncoderOutput) Named() map[string]*tensor.Tensor {
	m := map[string]*tensor.Tensor{}
	add := func(name string, t *tensor.Tensor) {
		if t != nil {
			m[name] = t
		}
	}
	add("last_hidden_state", o.LastHiddenState)
	add("pooler_output", o.PoolerOutput)
	add("logits", o.Logits)
	add("prediction_logits", o.PredictionLogits)
	add("seq_relationship_logits", o.SeqRelationshipLogits)
	add("start_logits", o.StartLogits)
	add("end_logits", o.EndLogits)
	for i, h := range o.HiddenStates {
		add("hidden_states."+itoa(i), h)
	}
	return m
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b [20]byte
	n := len(b)
	for ; i > 0; i /= 10 {
		n--
		b[n] = byte('0' + i%10)
	}
	return string(b[n:])
}
