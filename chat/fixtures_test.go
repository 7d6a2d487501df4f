package chat

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// sharedFixtures returns the shared fixture folder, or "" when absent.
func sharedFixtures() string {
	if d := os.Getenv("EMBRACE_SHARED_FIXTURES"); d != "" {
		if _, err := os.Stat(filepath.Join(d, "models")); err == nil {
			return d
		}
	}
	// The package sits one level below the module root.
	d := filepath.Join("..", "..", "shared", "fixtures")
	if _, err := os.Stat(d); err == nil {
		return d
	}
	return ""
}

const skipMsg = "shared fixtures not found: set EMBRACE_SHARED_FIXTURES or place them at ../shared/fixtures beside the module root"

// TestFixtureChats renders the "chat" entries of the model fixtures' reference.json
// with the template and special tokens of their tokenizer_config.json, and
// compares with the string apply_chat_template gave.
func TestFixtureChats(t *testing.T) {
	root := sharedFixtures()
	if root == "" {
		t.Skip(skipMsg)
	}
	for _, model := range []string{"llama", "qwen2"} {
		t.Run(model, func(t *testing.T) {
			dir := filepath.Join(root, "models", model)
			b, err := os.ReadFile(filepath.Join(dir, "reference.json"))
			if err != nil {
				t.Skipf("%s: %v", model, err)
			}
			var ref struct {
				Chat []struct {
					Messages            json.RawMessage `json:"messages"`
					AddGenerationPrompt bool            `json:"add_generation_prompt"`
					Rendered            string          `json:"rendered"`
				} `json:"chat"`
			}
			if err := json.Unmarshal(b, &ref); err != nil {
				t.Fatal(err)
			}
			if len(ref.Chat) == 0 {
				t.Fatalf("%s: reference.json has no chat entries", model)
			}
			tmpl, err := LoadDir(dir, "")
			if err != nil {
				t.Fatal(err)
			}
			config, err := os.ReadFile(filepath.Join(dir, "tokenizer_config.json"))
			if err != nil {
				t.Fatal(err)
			}
			tmpl2, err := FromTokenizerConfig(config, "")
			if err != nil {
				t.Fatal(err)
			}
			for i, c := range ref.Chat {
				msgs, err := MessagesFromJSON(c.Messages)
				if err != nil {
					t.Fatal(err)
				}
				for _, tm := range []*Template{tmpl, tmpl2} {
					got, err := tm.Render(msgs, Options{AddGenerationPrompt: c.AddGenerationPrompt})
					if err != nil {
						t.Fatalf("chat %d: %v", i, err)
					}
					if got != c.Rendered {
						t.Fatalf("chat %d:\n got: %q\nwant: %q", i, got, c.Rendered)
					}
				}
			}
			t.Logf("%d chats rendered exactly", len(ref.Chat))
		})
	}
}
