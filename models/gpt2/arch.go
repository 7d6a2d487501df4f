package gpt2

import (
	"context"
	"errors"
	"fmt"

	"github.com/embrace-go/embrace/hfdir"
	"github.com/embrace-go/embrace/models/arch"
)

// Arch registers GPT-2: model_type gpt2, the GPT2LMHeadModel head.
func Arch() arch.Registration {
	return arch.Registration{
		Name:       "gpt2",
		ModelTypes: []string{"gpt2"},
		Task: func(hc *hfdir.Config) (arch.Task, error) {
			if _, err := ParseConfig(hc.Data, hc.Path); err != nil {
				return "", err
			}
			return arch.TaskCausalLM, nil
		},
		Load: func(f *hfdir.Folder, opt arch.LoadOptions) (arch.Model, error) {
			return loadFolder(f, opt)
		},
	}
}

// Info describes the model.
func (m *Model) Info() arch.Info {
	c := &m.cfg
	pad := 0
	if c.PadTokenID != nil {
		pad = *c.PadTokenID
	}
	return arch.Info{
		Arch: "gpt2", ModelType: c.ModelType, Architectures: c.Architectures, Task: arch.TaskCausalLM,
		HiddenSize: c.NEmbd, VocabSize: c.VocabSize, MaxPositions: c.NPositions, PadTokenID: pad,
	}
}

// NewCache returns an empty *State; see NewState.
func (m *Model) NewCache(batch, capacity int) (arch.Cache, error) {
	return m.NewState(batch, capacity)
}

// Forward appends in's tokens to the cache c (a *State of this model) and
// returns the outputs asked for.
func (m *Model) Forward(ctx context.Context, c arch.Cache, in *arch.DecoderInput) (*arch.DecoderOutput, error) {
	if in == nil {
		return nil, errors.New("gpt2: nil input")
	}
	s, ok := c.(*State)
	if !ok || s == nil || s.m != m {
		return nil, fmt.Errorf("gpt2: the cache %T was not made by this model's NewCache", c)
	}
	s.out = arch.DecoderOutput{}
	if in.Logits == arch.AllPositions {
		if err := m.guard.Acquire("gpt2"); err != nil {
			return nil, err
		}
		logits, err := s.prefill(ctx, in.IDs, in.Mask, true)
		m.guard.Release()
		if err != nil {
			return nil, err
		}
		s.out.Logits = logits
		if in.Hidden {
			s.out.Hidden = s.allHidden
		}
		return &s.out, nil
	}
	var logits []float32
	var err error
	if len(in.IDs) == s.batch && s.Len() > 0 && allOnes(in.Mask) {
		logits, err = s.Step(ctx, in.IDs)
	} else {
		logits, err = s.Prefill(ctx, in.IDs, in.Mask)
	}
	if err != nil {
		return nil, err
	}
	if in.Logits == arch.LastPosition {
		s.out.Logits = logits
		if in.Hidden {
			s.out.Hidden = s.x.Float32s()
		}
	}
	return &s.out, nil
}

func allOnes(mask []int) bool {
	for _, v := range mask {
		if v != 1 {
			return false
		}
	}
	return true
}
