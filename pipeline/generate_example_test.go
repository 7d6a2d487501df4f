package pipeline_test

import (
	"context"
	"fmt"
	"log"

	"github.com/embrace-go/embrace/chat"
	"github.com/embrace-go/embrace/generate"
	"github.com/embrace-go/embrace/pipeline"
)

// The text-generation pipeline: prompt in, text out. The committed
// testdata/qwen2-chat is a tiny random-weight Qwen2ForCausalLM, so its text
// is noise, but every call below is the one a real model takes.
func ExampleTextGeneration() {
	ctx := context.Background()
	p, err := pipeline.NewTextGeneration(ctx, "testdata/qwen2-chat", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	cfg := p.Config() // generation_config.json defaults: greedy, stop at <|im_end|> or <|endoftext|>
	cfg.MaxNewTokens = 6
	out, err := p.Generate(ctx, "Hugging Face is", &cfg)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%q %v %s\n", out.Text, out.TokenIDs, out.FinishReason)
	n := 0
	for _, err := range p.Stream(ctx, "Hugging Face is", &cfg) {
		if err != nil {
			log.Fatal(err)
		}
		n++
	}
	fmt.Println(n > 0)
	// Output:
	// "cific pay Pro0 pay er" [1143 1488 1398 16 1488 1463] length
	// true
}

// A chat: the messages are rendered with the folder's chat template
// (tokenizer_config.json), then answered.
func ExampleTextGeneration_Chat() {
	ctx := context.Background()
	p, err := pipeline.NewTextGeneration(ctx, "testdata/qwen2-chat", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	msgs := []chat.Message{
		{Role: "system", Content: "You are a helpful assistant."},
		{Role: "user", Content: "Hello!"},
	}
	prompt, ids, err := p.ChatPrompt(msgs, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%q\n%d prompt tokens\n", prompt, len(ids))
	out, err := p.Chat(ctx, msgs, nil, &generate.Config{MaxNewTokens: 4})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(out.TokenIDs), out.FinishReason)
	// Output:
	// "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n"
	// 34 prompt tokens
	// 4 length
}
