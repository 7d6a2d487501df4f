package generate

import "github.com/embrace-go/embrace/models/gpt2"

// GPT2 adapts a GPT-2 model to Model; each session is a *gpt2.State.
func GPT2(m *gpt2.Model) Model { return gpt2Model{m} }

type gpt2Model struct{ m *gpt2.Model }

func (g gpt2Model) NewSession(batch, capacity int) (Session, error) {
	st, err := g.m.NewState(batch, capacity)
	if err != nil {
		return nil, err
	}
	return st, nil
}

func (g gpt2Model) VocabSize() int    { return g.m.VocabSize() }
func (g gpt2Model) MaxPositions() int { return g.m.MaxPositions() }
