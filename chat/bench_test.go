package chat

import (
	"encoding/json"
	"os"
	"testing"
	"time"
)

// BenchmarkRender renders the Qwen2.5 and Llama 3.2 templates on a conversation
// with a tool call and a tool result, tools given (testdata cases "*/tools").
func BenchmarkRender(b *testing.B) {
	var templates map[string]refTemplate
	var cases []refCase
	for file, into := range map[string]any{"testdata/templates.json": &templates, "testdata/cases.json": &cases} {
		data, err := os.ReadFile(file)
		if err != nil {
			b.Fatal(err)
		}
		if err := json.Unmarshal(data, into); err != nil {
			b.Fatal(err)
		}
	}
	for _, name := range []string{"qwen2.5/tools", "llama3.2/tools"} {
		b.Run(name, func(b *testing.B) {
			var c refCase
			for _, x := range cases {
				if x.Name == name {
					c = x
				}
			}
			rt := templates[*c.Template]
			tmpl, err := Parse(*c.Template, rt.Template)
			if err != nil {
				b.Fatal(err)
			}
			msgs, err := MessagesFromJSON(c.Messages)
			if err != nil {
				b.Fatal(err)
			}
			opts := Options{AddGenerationPrompt: true, Tools: rawList(c.Tools), SpecialTokens: rt.SpecialTokens, Now: func() time.Time { return referenceNow }}
			b.ReportAllocs()
			for b.Loop() {
				got, err := tmpl.Render(msgs, opts)
				if err != nil || got != *c.Rendered {
					b.Fatalf("%v %q", err, got)
				}
			}
		})
	}
}
