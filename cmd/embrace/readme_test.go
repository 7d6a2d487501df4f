package main

import (
	"bufio"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/embrace-go/embrace/internal/clitest"
)

// hubStandIns maps the Hub repos the READMEs name to fixture folders of the
// same kind (tiny models, or the real tokenizer where a command's output
// depends on its vocabulary), served by the fake Hub under the repo's name.
// A key is "command repo"; "a+b" serves folder a's files with b's on top.
var hubStandIns = map[string]string{
	"embed sentence-transformers/all-MiniLM-L6-v2":                        "models/minilm-st",
	"classify distilbert/distilbert-base-uncased-finetuned-sst-2-english": "models/distilbert-cls",
	"ner dslim/bert-base-NER":                                             "models/bert-ner",
	"qa distilbert/distilbert-base-cased-distilled-squad":                 "models/bert-qa",
	"fill-mask google-bert/bert-base-uncased":                             "models/bert-mlm",
	"tokenize google-bert/bert-base-uncased":                              "models/bert-mlm+tokenizers/bert-base-uncased",
	"generate openai-community/gpt2":                                      "models/gpt2",
	"generate Qwen/Qwen2.5-0.5B-Instruct":                                 "../../pipeline/testdata/qwen2-chat",
}

// TestReadmeHubCommands runs every `go run ./cmd/embrace ...` command of
// the READMEs that downloads from the Hub, as written, against a fake Hub
// serving a stand-in under the repo's name: each must exit 0 and print
// something. (The local-folder commands are run by the other tests and by
// CI; serve is covered by the server tests.)
func TestReadmeHubCommands(t *testing.T) {
	fx := clitest.Fixtures(t)
	outer := t
	var examples string // folder of the built examples, built on first use
	ran := 0
	for _, readme := range []string{"../../README.md", "../../examples/README.md", "README.md"} {
		for _, line := range commandLines(t, readme) {
			args, ok := shellWords(line)
			if !ok {
				t.Logf("%s: not run (shell substitution): %s", readme, line)
				continue
			}
			cmd := args[0]
			example, isExample := strings.CutPrefix(cmd, "example:")
			if isExample {
				cmd, args = example, args[1:]
			}
			if cmd == "serve" {
				continue
			}
			repo := ""
			for i, a := range args {
				if a == "-model" && i+1 < len(args) {
					repo = args[i+1]
				}
			}
			if cmd == "download" {
				repo = args[len(args)-1]
			}
			if repo == "" && isExample {
				repo = exampleDefault(t, example)
			} else if repo == "" {
				repo = defaultModels[cmd]
			}
			if repo == "" || strings.HasPrefix(repo, ".") || strings.HasPrefix(repo, "/") || strings.Contains(repo, "$") || isDir(repo) {
				continue // a local folder
			}
			stand, ok := hubStandIns[cmd+" "+repo]
			if !ok {
				t.Errorf("%s: %q downloads %s, which has no stand-in in hubStandIns", readme, line, repo)
				continue
			}
			t.Run(line, func(t *testing.T) {
				dir := t.TempDir()
				for _, part := range strings.Split(stand, "+") {
					if !strings.HasPrefix(part, "..") {
						part = filepath.Join(fx, part)
					}
					err := filepath.WalkDir(part, func(p string, d fs.DirEntry, err error) error {
						if err != nil || d.IsDir() {
							return err
						}
						rel, _ := filepath.Rel(part, p)
						data, err := os.ReadFile(p)
						if err == nil {
							os.MkdirAll(filepath.Dir(filepath.Join(dir, rel)), 0o755)
							err = os.WriteFile(filepath.Join(dir, rel), data, 0o644)
						}
						return err
					})
					if err != nil {
						t.Fatal(err)
					}
				}
				clitest.StartFakeHub(t, repo, dir)
				if !isExample {
					r := clitest.Run(t, run, "", args...)
					if r.Code != 0 || strings.TrimSpace(r.Stdout) == "" {
						t.Errorf("exit %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
					}
					return
				}
				if examples == "" {
					examples = outer.TempDir()
					if out, err := exec.Command("go", "build", "-o", examples, "../../examples/...").CombinedOutput(); err != nil {
						t.Fatalf("building the examples: %v\n%s", err, out)
					}
				}
				out, err := exec.Command(filepath.Join(examples, example), args...).CombinedOutput()
				if err != nil || len(strings.TrimSpace(string(out))) == 0 {
					t.Errorf("examples/%s: %v, output %q", example, err, out)
				}
			})
			ran++
		}
	}
	if ran < 10 {
		t.Errorf("ran %d Hub commands from the READMEs, want at least 10: is the parsing still right?", ran)
	}
}

// commandLines returns the arguments after "go run ./cmd/embrace" of every
// such line of a README, and those after "go run ./examples/NAME" prefixed
// by "example:NAME".
func commandLines(t *testing.T, path string) []string {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		s := strings.TrimSpace(sc.Text())
		if rest, ok := strings.CutPrefix(s, "go run ./cmd/embrace "); ok {
			if i := strings.Index(rest, "  #"); i >= 0 {
				rest = strings.TrimSpace(rest[:i])
			}
			out = append(out, rest)
		}
		if rest, ok := strings.CutPrefix(s, "go run ./examples/"); ok {
			if name, args, ok := strings.Cut(rest, " "); ok && name != "conformance" && name != "serve" {
				out = append(out, "example:"+name+" "+strings.TrimSpace(args))
			}
		}
	}
	return out
}

// shellWords splits a command line as a POSIX shell would for the quoting
// the READMEs use: '...', "..." and $'...' (with \t and \n). It reports
// false for a line with a command substitution.
func shellWords(s string) ([]string, bool) {
	if strings.Contains(s, "$(") || strings.Contains(s, "`") {
		return nil, false
	}
	var words []string
	var w strings.Builder
	in := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			if in {
				words = append(words, w.String())
				w.Reset()
				in = false
			}
			continue
		case c == '$' && i+1 < len(s) && s[i+1] == '\'':
			i += 2
			for ; i < len(s) && s[i] != '\''; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
					switch s[i] {
					case 't':
						w.WriteByte('\t')
					case 'n':
						w.WriteByte('\n')
					default:
						w.WriteByte(s[i])
					}
					continue
				}
				w.WriteByte(s[i])
			}
		case c == '\'' || c == '"':
			j := strings.IndexByte(s[i+1:], c)
			if j < 0 {
				return nil, false
			}
			w.WriteString(s[i+1 : i+1+j])
			i += j + 1
		default:
			w.WriteByte(c)
		}
		in = true
	}
	if in {
		words = append(words, w.String())
	}
	return words, true
}

// exampleDefault reads the default of an example's -model flag from its
// source.
func exampleDefault(t *testing.T, name string) string {
	src, err := os.ReadFile(filepath.Join("../../examples", name, "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`flag\.String\("model", "([^"]+)"`).FindSubmatch(src)
	if m == nil {
		t.Fatalf("examples/%s/main.go: no -model flag with a default", name)
	}
	return string(m[1])
}

func isDir(p string) bool {
	fi, err := os.Stat(filepath.Join("../..", p))
	return err == nil && fi.IsDir()
}

func TestShellWords(t *testing.T) {
	got, ok := shellWords(`tokenize -json -pair $'What is it?\tA test.' "a b" 'c d'`)
	want := []string{"tokenize", "-json", "-pair", "What is it?\tA test.", "a b", "c d"}
	if !ok || strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("shellWords = %q, want %q", got, want)
	}
	if _, ok := shellWords(`qa -context "$(cat article.txt)" "Who?"`); ok {
		t.Error("a command substitution was accepted")
	}
}

// defaultModels is each command's DefaultModel.
var defaultModels = map[string]string{
	"embed": embedCommand.DefaultModel, "generate": generateCommand.DefaultModel,
	"tokenize": tokenizeCommand.DefaultModel, "classify": classifyCommand.DefaultModel,
	"ner": nerCommand.DefaultModel, "qa": qaCommand.DefaultModel, "fill-mask": fillMaskCommand.DefaultModel,
}
