// "embrace generate" continues a prompt with a causal language model (GPT-2
// family), streaming the text to stdout as each token is produced.
//
//	embrace generate "Hugging Face is"
//	embrace generate -max-new-tokens 60 -temperature 0.8 -top-p 0.95 -seed 1 "Once upon a time"
//	embrace generate -stop "." -json "The capital of France is"
//	embrace generate -chat -system "You are terse." -model Qwen/Qwen2.5-0.5B-Instruct "Tell me a joke"
//
// Run "embrace generate -h" for every flag.

package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/embrace-go/embrace/chat"
	"github.com/embrace-go/embrace/generate"
	"github.com/embrace-go/embrace/internal/cli"
	"github.com/embrace-go/embrace/models/arch"
	"github.com/embrace-go/embrace/pipeline"
)

var generateCommand = &cli.Command{
	Name:     "embrace generate",
	Summary:  "continue prompts with a causal language model, streaming the text",
	Synopsis: "[PROMPT...]",
	Details: `Input: each argument is one prompt; without arguments, each non-blank line of
stdin is one prompt.

Decoding follows the model's generation_config.json (greedy for GPT-2) unless
-temperature, -top-k or -top-p is given, which switches on sampling with the
other settings at transformers' defaults (top-k 50, top-p 1); -seed makes
sampling repeatable and -temperature 0 forces greedy search. Generation stops after -max-new-tokens, at the
end-of-text token, or just before the first -stop string (repeat -stop for
several).

Output: each prompt followed by its continuation, written piece by piece as
tokens are generated (pieces never split a UTF-8 character), then a newline.
With -json nothing is streamed; one line per prompt when it is done:
{"prompt": "...", "generated_text": prompt + continuation, "new_text": "...",
"token_ids": [...], "finish_reason": "length" | "eos" | "stop"}.`,
	DefaultModel: "openai-community/gpt2",
}

// stopList is a repeatable -stop flag.
type stopList []string

func (s *stopList) String() string { return strings.Join(*s, ",") }

func (s *stopList) Set(v string) error {
	if v == "" {
		return fmt.Errorf("a stop string cannot be empty")
	}
	*s = append(*s, v)
	return nil
}

// run is the whole program, callable from tests.
func runGenerate(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := generateCommand.NewFlagSet()
	model := generateCommand.ModelFlag(fs)
	asJSON := fs.Bool("json", false, "print one JSON object per prompt when it is done (no streaming)")
	var stops stopList
	maxNew := fs.Int("max-new-tokens", 50, "most tokens generated per prompt")
	temperature := fs.Float64("temperature", 1, "sampling temperature; giving it switches on sampling (0 = greedy)")
	topK := fs.Int("top-k", 50, "sample from the k most likely tokens only (0 = no limit); giving it switches on sampling")
	topP := fs.Float64("top-p", 1, "sample from the smallest set of tokens whose probability reaches p; giving it switches on sampling")
	seed := fs.Uint64("seed", 0, "random seed for sampling (the same seed gives the same text)")
	fs.Var(&stops, "stop", "end the text just before this `string` (repeatable)")
	chatMode := fs.Bool("chat", false, "treat each prompt as a user message: render it with the model's chat template (tokenizer_config.json or chat_template.jinja) and print the answer")
	system := fs.String("system", "", "with -chat, a system message before each user message")
	quantize := fs.String("quantize", "", "store the Linear weights reduced: q8 (8-bit blocks), or \"\" for the checkpoint's precision")
	compute := fs.String("compute", "", "arithmetic of the products: bf16 (where the CPU has AVX512_BF16), or \"\" for float32")
	threads := generateCommand.ThreadsFlag(fs)
	if ok, code := generateCommand.Parse(fs, args, stdout, stderr); !ok {
		return code
	}
	load := arch.LoadOptions{Quantize: arch.Quantization(*quantize), Compute: arch.Compute(*compute), Threads: *threads}
	if err := load.Validate(); err != nil {
		return generateCommand.Failf(stderr, "-quantize / -compute / -threads: %v", err)
	}
	switch {
	case *maxNew < 1:
		return generateCommand.Failf(stderr, "-max-new-tokens must be at least 1, got %d", *maxNew)
	case *temperature < 0:
		return generateCommand.Failf(stderr, "-temperature must be 0 or more, got %g", *temperature)
	case *topK < 0:
		return generateCommand.Failf(stderr, "-top-k must be 0 or more, got %d", *topK)
	case *topP <= 0 || *topP > 1:
		return generateCommand.Failf(stderr, "-top-p must be in (0, 1], got %g", *topP)
	}

	dir, err := cli.ResolveModel(ctx, *model)
	if err != nil {
		return generateCommand.Fail(stderr, err)
	}
	gen, err := pipeline.NewTextGeneration(ctx, dir, &pipeline.Options{Load: load})
	if err != nil {
		return generateCommand.Fail(stderr, fmt.Errorf("loading %s: %w", dir, err))
	}
	defer gen.Close()

	// Start from the model's generation_config.json and override only what
	// was asked for, so a flag left alone keeps the model's default.
	cfg := gen.Config()
	cfg.MaxNewTokens = *maxNew
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "temperature":
			cfg.Temperature, cfg.DoSample = *temperature, true
		case "top-k":
			cfg.TopK, cfg.DoSample = *topK, true
		case "top-p":
			cfg.TopP, cfg.DoSample = *topP, true
		case "seed":
			cfg.Seed = *seed
		}
	})
	if *temperature == 0 {
		cfg.DoSample = false
	}
	cfg.StopStrings = append(cfg.StopStrings, stops...)
	if err := cfg.Validate(); err != nil {
		return generateCommand.Fail(stderr, err)
	}

	jl := cli.NewJSONLines(stdout)
	one := func(where, prompt string) error {
		if *chatMode {
			return chatOne(ctx, gen, &cfg, *system, prompt, *asJSON, jl, stdout, where)
		}
		if *asJSON {
			res, err := gen.Generate(ctx, prompt, &cfg)
			if err != nil {
				return fmt.Errorf("%s: %w", where, err)
			}
			return jl.Write(struct {
				Prompt        string `json:"prompt"`
				GeneratedText string `json:"generated_text"`
				NewText       string `json:"new_text"`
				TokenIDs      []int  `json:"token_ids"`
				FinishReason  string `json:"finish_reason"`
			}{prompt, res.FullText, res.Text, generateNonNil(res.TokenIDs), string(res.FinishReason)})
		}
		if _, err := io.WriteString(stdout, prompt); err != nil {
			return err
		}
		for piece, err := range gen.Stream(ctx, prompt, &cfg) {
			if err != nil {
				fmt.Fprintln(stdout) // end the partial line before the error
				return fmt.Errorf("%s: %w", where, err)
			}
			if _, err := io.WriteString(stdout, piece); err != nil {
				return err
			}
		}
		_, err := fmt.Fprintln(stdout)
		return err
	}
	if len(fs.Args()) > 0 {
		for i, a := range fs.Args() {
			if err = one(fmt.Sprintf("argument %d", i+1), a); err != nil {
				break
			}
		}
	} else {
		if stdin == os.Stdin && cli.StdinIsTerminal() {
			fmt.Fprintln(stderr, "embrace generate: reading prompts from stdin, one per line (Ctrl-D ends)")
		}
		err = cli.Lines(ctx, stdin, func(n int, line string) error {
			return one(fmt.Sprintf("stdin line %d", n), line)
		})
	}
	if err != nil {
		return generateCommand.Fail(stderr, err)
	}
	return cli.ExitOK
}

// chatOne answers one user message with the model's chat template: the
// answer is streamed (or, with -json, printed with the rendered prompt).
func chatOne(ctx context.Context, gen *pipeline.TextGeneration, cfg *generate.Config, system, user string, asJSON bool, jl *cli.JSONLines, stdout io.Writer, where string) error {
	var msgs []chat.Message
	if system != "" {
		msgs = append(msgs, chat.Message{Role: "system", Content: system})
	}
	msgs = append(msgs, chat.Message{Role: "user", Content: user})
	if asJSON {
		res, err := gen.Chat(ctx, msgs, nil, cfg)
		if err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		return jl.Write(struct {
			Message      string `json:"message"`
			Prompt       string `json:"prompt"`
			Answer       string `json:"answer"`
			TokenIDs     []int  `json:"token_ids"`
			FinishReason string `json:"finish_reason"`
		}{user, strings.TrimSuffix(res.FullText, res.Text), res.Text, generateNonNil(res.TokenIDs), string(res.FinishReason)})
	}
	for piece, err := range gen.StreamChat(ctx, msgs, nil, cfg) {
		if err != nil {
			fmt.Fprintln(stdout)
			return fmt.Errorf("%s: %w", where, err)
		}
		if _, err := io.WriteString(stdout, piece); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintln(stdout)
	return err
}

// generateNonNil makes an empty list print as [] rather than null in JSON.
func generateNonNil(s []int) []int {
	if s == nil {
		return []int{}
	}
	return s
}
