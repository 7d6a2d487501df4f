package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/embrace-go/embrace/internal/clitest"
	"github.com/embrace-go/embrace/pipeline"
)

type qaLine struct {
	Question string     `json:"question"`
	Context  string     `json:"context"`
	Answers  []qaAnswer `json:"answers"`
}

type qaRef struct {
	Question     string `json:"question"`
	Context      string `json:"context"`
	TopK         int    `json:"top_k"`
	MaxAnswerLen int    `json:"max_answer_len"`
	Result       []struct {
		Score  float64 `json:"score"`
		Start  int     `json:"start"` // code points
		End    int     `json:"end"`
		Answer string  `json:"answer"`
	} `json:"result"`
}

func checkAgainstRef(t *testing.T, got qaLine, e qaRef) {
	t.Helper()
	if got.Question != e.Question || got.Context != e.Context || len(got.Answers) != len(e.Result) {
		t.Fatalf("%q: got %+v, want %+v", e.Question, got, e.Result)
	}
	for i, w := range e.Result {
		g := got.Answers[i]
		if g.Answer != w.Answer || g.CharStart != w.Start || g.CharEnd != w.End || !clitest.ScoreClose(g.Score, w.Score) {
			t.Errorf("%q qaAnswer %d: %+v, transformers %+v", e.Question, i, g, w)
		}
		if e.Context[g.Start:g.End] != g.Answer {
			t.Errorf("byte span %d-%d is %q, qaAnswer %q", g.Start, g.End, e.Context[g.Start:g.End], g.Answer)
		}
	}
}

// TestMatchesTransformers runs the fixture's question_answering entries
// through every input form: -question/-context, TAB lines on stdin, and
// questions as arguments with a shared -context.
func TestQAMatchesTransformers(t *testing.T) {
	dir := clitest.Model(t, "bert-qa")
	var ref struct {
		QA []qaRef `json:"question_answering"`
	}
	clitest.Reference(t, dir, &ref)
	if len(ref.QA) == 0 {
		t.Fatal("no question_answering entries in reference.json")
	}
	var stdin strings.Builder
	for _, e := range ref.QA {
		flags := []string{"-model", dir, "-json", "-top-k", strconv.Itoa(e.TopK), "-max-qaAnswer-len", strconv.Itoa(e.MaxAnswerLen)}
		r := clitest.Run(t, runQA, "", append(flags, "-question", e.Question, "-context", e.Context)...)
		if r.Code != 0 {
			t.Fatalf("exit %d: %s", r.Code, r.Stderr)
		}
		checkAgainstRef(t, clitest.JSONLines[qaLine](t, r.Stdout)[0], e)

		r = clitest.Run(t, runQA, "", append(flags, "-context", e.Context, e.Question)...)
		if r.Code != 0 {
			t.Fatalf("exit %d: %s", r.Code, r.Stderr)
		}
		checkAgainstRef(t, clitest.JSONLines[qaLine](t, r.Stdout)[0], e)
		fmt.Fprintf(&stdin, "%s\t%s\n", e.Question, e.Context)
	}
	e := ref.QA[0]
	r := clitest.Run(t, runQA, stdin.String(), "-model", dir, "-json", "-top-k", strconv.Itoa(e.TopK), "-max-qaAnswer-len", strconv.Itoa(e.MaxAnswerLen))
	if r.Code != 0 {
		t.Fatalf("exit %d: %s", r.Code, r.Stderr)
	}
	got := clitest.JSONLines[qaLine](t, r.Stdout)
	if len(got) != len(ref.QA) {
		t.Fatalf("%d lines for %d questions", len(got), len(ref.QA))
	}
	for i, g := range got {
		if ref.QA[i].TopK == e.TopK && ref.QA[i].MaxAnswerLen == e.MaxAnswerLen {
			checkAgainstRef(t, g, ref.QA[i])
		}
	}
}

func TestQATextFormMatchesLibrary(t *testing.T) {
	dir := clitest.Model(t, "bert-qa")
	q, c := "Who wrote the book?", "The book was written by Ada Lovelace in London."
	qa, err := pipeline.NewQuestionAnswerer(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer qa.Close()
	want, err := qa.Answer(context.Background(), []pipeline.QAInput{{Question: q, Context: c}}, pipeline.QAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := clitest.Run(t, runQA, "", "-model", dir, "-question", q, "-context", c)
	a := want[0][0]
	line := fmt.Sprintf("%s\t%q (score %.4f, bytes %d-%d)\n", q, a.Answer, a.Score, a.Start, a.End)
	if r.Code != 0 || r.Stdout != line {
		t.Errorf("exit %d, stdout %q; want %q (stderr %s)", r.Code, r.Stdout, line, r.Stderr)
	}
}

func TestQAErrors(t *testing.T) {
	dir := clitest.Model(t, "bert-qa")
	missing := filepath.Join(t.TempDir(), "nope")
	clitest.WantOneLineError(t, clitest.Run(t, runQA, "", "-model", missing, "-question", "q", "-context", "c"), "embrace qa", "does not exist")
	clitest.WantOneLineError(t, clitest.Run(t, runQA, "", "-model", dir, "-question", "q"), "embrace qa", "-context")
	clitest.WantOneLineError(t, clitest.Run(t, runQA, "", "-model", dir, "-question", "q", "-context", "c", "extra"), "embrace qa", "not both")
	clitest.WantOneLineError(t, clitest.Run(t, runQA, "Who?\tAda.\nno tab\n", "-model", dir), "embrace qa", "stdin line 2", "TAB")
	clitest.WantOneLineError(t, clitest.Run(t, runQA, "", "-model", dir, "-context", "   ", "Who?"), "embrace qa", "argument 1", "non-empty")
	clitest.WantOneLineError(t, clitest.Run(t, runQA, "", "-top-k", "0"), "embrace qa", "-top-k")
	clitest.WantOneLineError(t, clitest.Run(t, runQA, "", "-model", clitest.Model(t, "bert-cls"), "-question", "q", "-context", "c"), "embrace qa", "loading")
	r := clitest.Run(t, runQA, "", "-h")
	if r.Code != 0 || !strings.Contains(r.Stdout, "-max-qaAnswer-len") || !strings.Contains(r.Stdout, qaCommand.DefaultModel) {
		t.Errorf("-h: exit %d, %q", r.Code, r.Stdout)
	}
}

// TestHubRepoID: -model with a repo id downloads from a (fake) Hub into the
// Hugging Face cache and gives the same output as the local folder.
func TestQAHubRepoID(t *testing.T) {
	clitest.CheckHubRun(t, runQA, clitest.Model(t, "bert-qa"), "test-org/tiny-qa", "-json", "-question", "Who?", "-context", "Ada wrote it.")
}
