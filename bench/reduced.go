package main

import (
	"context"
	"math/rand/v2"
	"os"

	"github.com/embrace-go/embrace/hfdir"
	"github.com/embrace-go/embrace/models"
	"github.com/embrace-go/embrace/models/arch"
	"github.com/embrace-go/embrace/safetensors"
)

// Reduced-precision entries (issue 20): the same random GPT-2 124M and
// BERT-base folders as gpt2.go and bert.go, loaded with arch.LoadOptions
// that quantize the Linear weights to Q8 (int8 blocks of 32 with a half
// scale) or compute them in bfloat16 (float32 where the CPU lacks
// AVX512_BF16). Compare each with its float32 twin in the same run.

func init() {
	q8 := &arch.LoadOptions{Quantize: arch.QuantizeQ8}
	bf16c := &arch.LoadOptions{Compute: arch.ComputeBF16}
	registerGPT2DecodeOpt("gpt2/decode-q8-ctx128", q8, 128)
	registerBERTOpt("bert-base/b1s128-bf16c", bertBase, 128, bf16c)
	registerBERTOpt("bert-base/b1s128-q8", bertBase, 128, q8)
	registerBERTOp("minilm-l6/b8s128-bf16c", miniLML6, 8, 128, 1, bf16c)
	registerBERTOp("minilm-l6/b8s128-q8", miniLML6, 8, 128, 1, q8)
}

// registerGPT2DecodeOpt is registerGPT2Decode on F32 weights loaded with opt.
func registerGPT2DecodeOpt(name string, opt *arch.LoadOptions, ctxLen int) {
	b := register(name, "tokens/s", func() (func() error, func(), error) {
		dir, err := os.MkdirTemp("", "embrace-bench-gpt2-")
		if err != nil {
			return nil, nil, err
		}
		cleanup := func() { os.RemoveAll(dir) }
		if err := writeRandomGPT2(dir, safetensors.F32); err != nil {
			cleanup()
			return nil, nil, err
		}
		f, err := hfdir.Read(dir)
		if err != nil {
			cleanup()
			return nil, nil, err
		}
		m, err := models.LoadCausalLM(f, opt)
		if err != nil {
			cleanup()
			return nil, nil, err
		}
		done := func() { m.Close(); cleanup() }
		st, err := m.NewCache(1, ctxLen+1)
		if err != nil {
			done()
			return nil, nil, err
		}
		ctx := context.Background()
		if _, err := m.Forward(ctx, st, &arch.DecoderInput{IDs: randomIDs(ctxLen)}); err != nil {
			done()
			return nil, nil, err
		}
		next := &arch.DecoderInput{IDs: []int{42}}
		op := func() error {
			if err := st.Truncate(ctxLen); err != nil {
				return err
			}
			_, err := m.Forward(ctx, st, next)
			return err
		}
		return op, done, nil
	}, func(sec float64) float64 { return 1 / sec })
	b.gflops = func(sec float64) float64 { return gpt2Flops(1, ctxLen+1) / sec / 1e9 }
}

// registerBERTOpt is registerBERT (batch 1) on weights loaded with opt.
func registerBERTOpt(name string, sh bertShape, seq int, opt *arch.LoadOptions) {
	b := register(name, "ms", func() (func() error, func(), error) {
		dir, err := os.MkdirTemp("", "embrace-bench-bert-")
		if err != nil {
			return nil, nil, err
		}
		cleanup := func() { os.RemoveAll(dir) }
		if err := writeRandomBERT(dir, sh); err != nil {
			cleanup()
			return nil, nil, err
		}
		f, err := hfdir.Read(dir)
		if err != nil {
			cleanup()
			return nil, nil, err
		}
		m, err := models.LoadEncoder(f, opt)
		if err != nil {
			cleanup()
			return nil, nil, err
		}
		rng := rand.New(rand.NewPCG(1, 2))
		in := &arch.EncoderInput{Batch: 1, Seq: seq, InputIDs: make([]int, seq)}
		for i := range in.InputIDs {
			in.InputIDs[i] = 1000 + rng.IntN(sh.vocab-1000)
		}
		op := func() error {
			_, err := m.Encode(context.Background(), in, arch.EncodeOptions{})
			return err
		}
		return op, func() { m.Close(); cleanup() }, nil
	}, func(sec float64) float64 { return sec * 1e3 })
	n := float64(seq)
	d, in := float64(sh.hidden), float64(sh.inner)
	flops := float64(sh.layers) * 2 * (n*(4*d*d+2*d*in) + n*n*2*d)
	b.gflops = func(sec float64) float64 { return flops / sec / 1e9 }
}
