package models

import (
	"github.com/embrace-go/embrace/models/arch"
	"github.com/embrace-go/embrace/models/bert"
	"github.com/embrace-go/embrace/models/gpt2"
	"github.com/embrace-go/embrace/models/llama"
	"github.com/embrace-go/embrace/models/modernbert"
	"github.com/embrace-go/embrace/models/mpnet"
)

// registry lists the architecture packages. Adding one is one line here.
func registry() []arch.Registration {
	return []arch.Registration{
		bert.Arch(),
		gpt2.Arch(),
		llama.Arch(),
		mpnet.Arch(),
		modernbert.Arch(),
	}
}
