package chat_test

import (
	"errors"
	"fmt"

	"github.com/embrace-go/embrace/chat"
)

func Example() {
	// A tokenizer_config.json with a ChatML-style template.
	config := []byte(`{
		"eos_token": "<|im_end|>",
		"chat_template": "{% for m in messages %}{% if m.role not in ['user', 'assistant'] %}{{ raise_exception('unknown role ' ~ m.role) }}{% endif %}\n<|im_start|>{{ m.role }}\n{{ m.content }}{{ eos_token }}\n{% endfor %}\n{% if add_generation_prompt %}\n<|im_start|>assistant\n{% endif %}"
	}`)
	tmpl, err := chat.FromTokenizerConfig(config, "")
	if err != nil {
		fmt.Println(err)
		return
	}
	prompt, err := tmpl.Render([]chat.Message{
		{Role: "user", Content: "Hello!"},
		{Role: "assistant", Content: "Hi, how can I help?"},
		{Role: "user", Content: "Tell me a joke."},
	}, chat.Options{AddGenerationPrompt: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Print(prompt)

	_, err = tmpl.Render([]chat.Message{{Role: "robot", Content: "beep"}}, chat.Options{})
	var raised *chat.RaiseError
	if errors.As(err, &raised) {
		fmt.Println("template refused:", raised.Message)
	}
	// Output:
	// <|im_start|>user
	// Hello!<|im_end|>
	// <|im_start|>assistant
	// Hi, how can I help?<|im_end|>
	// <|im_start|>user
	// Tell me a joke.<|im_end|>
	// <|im_start|>assistant
	// template refused: unknown role robot
}
