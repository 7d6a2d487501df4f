package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
	ebeam "github.com/embrace-go/embrace/beam"
	"github.com/embrace-go/embrace/pipeline"
)

const testModel = "../../../pipeline/testdata/minilm-st"

func TestMain(m *testing.M) { ptest.MainWithDefault(m, "prism") }

// writeCorpus writes n JSONL records, then the bad lines, and returns the
// good records' texts by id.
func writeCorpus(t *testing.T, path string, n int, bad []string) map[string]string {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	texts := map[string]string{}
	for i := 0; i < n; i++ {
		text := fmt.Sprintf("document %d talks about topic %d and %s", i, i%17, strings.Repeat("more words ", i%9))
		id := fmt.Sprintf("rec-%05d", i)
		if i%250 == 3 {
			// A numeric id is read as its decimal text.
			id = fmt.Sprint(900000 + i)
			fmt.Fprintf(w, "{\"id\": %s, \"text\": %q}\n", id, text)
		} else {
			b, _ := json.Marshal(map[string]any{"id": id, "text": text, "metadata": map[string]any{"i": i}})
			w.Write(append(b, '\n'))
		}
		texts[id] = text
	}
	for _, line := range bad {
		w.WriteString(line + "\n")
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return texts
}

func readJSONL[T any](t *testing.T, path string) []T {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []T
	for i, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		if line == "" {
			continue
		}
		var v T
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("%s:%d: %v", path, i+1, err)
		}
		out = append(out, v)
	}
	return out
}

func TestEmbedCorpus(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	in := filepath.Join(dir, "in")
	if err := os.Mkdir(in, 0o755); err != nil {
		t.Fatal(err)
	}
	bad := []string{
		`{"id": "x1", "text": `,                   // invalid JSON
		`{"text": "no id here"}`,                  // no id
		`{"id": "x3"}`,                            // no text
		"{\"id\": \"x4\", \"text\": \"caf\xe9\"}", // invalid UTF-8
		`{"id": "x5", "text": ""}`,                // empty text
		``,                                        // blank line: skipped
	}
	want := writeCorpus(t, filepath.Join(in, "a.jsonl"), 1000, bad)
	// A plain text file: one document a line, id FILE:LINE.
	txt := filepath.Join(in, "b.txt")
	if err := os.WriteFile(txt, []byte("first plain line\r\nsecond plain line\n\nlast line without newline"), 0o644); err != nil {
		t.Fatal(err)
	}
	want[txt+":1"], want[txt+":2"], want[txt+":4"] = "first plain line", "second plain line", "last line without newline"

	prefix := filepath.Join(dir, "out", "deep", "vectors")
	cfg := config{Input: filepath.Join(in, "*"), Output: prefix, Format: "auto", Shards: 3, MaxLine: 1 << 20, Reshuffle: true,
		Embed: ebeam.EmbedConfig{ModelConfig: ebeam.ModelConfig{Model: testModel, BatchSize: 16, Truncate: true}}}
	if err := cfg.check(ctx); err != nil {
		t.Fatal(err)
	}
	p, err := build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	res, err := ptest.RunWithMetrics(p)
	if err != nil {
		t.Fatal(err)
	}

	files, _ := filepath.Glob(prefix + "*")
	sort.Strings(files)
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	wantNames := "vectors-00000-of-00003.jsonl vectors-00001-of-00003.jsonl vectors-00002-of-00003.jsonl vectors-dead-letters-00000-of-00001.jsonl"
	if got := strings.Join(names, " "); got != wantNames {
		t.Fatalf("files %s, want %s", got, wantNames)
	}

	lib, err := pipeline.NewSentenceEmbedder(ctx, testModel, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer lib.Close()
	ids := make([]string, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	texts := make([]string, len(ids))
	for i, id := range ids {
		texts[i] = want[id]
	}
	vecs, err := lib.Embed(ctx, texts)
	if err != nil {
		t.Fatal(err)
	}
	wantVec := map[string][]float32{}
	for i, id := range ids {
		wantVec[id] = vecs[i]
	}

	seen := map[string]bool{}
	for _, f := range files[:3] {
		for _, o := range readJSONL[outputLine](t, f) {
			if seen[o.ID] {
				t.Fatalf("id %s twice in the output", o.ID)
			}
			seen[o.ID] = true
			w, ok := wantVec[o.ID]
			if !ok {
				t.Fatalf("unexpected id %q in %s", o.ID, f)
			}
			if len(o.Vector) != len(w) {
				t.Fatalf("%s: %d numbers, want %d", o.ID, len(o.Vector), len(w))
			}
			for j := range w {
				if math.Abs(float64(o.Vector[j]-w[j])) > 1e-6 {
					t.Fatalf("%s: vector[%d] = %g, the library gives %g", o.ID, j, o.Vector[j], w[j])
				}
			}
		}
	}
	if len(seen) != len(want) {
		t.Errorf("%d vectors, want %d", len(seen), len(want))
	}

	dead := readJSONL[ebeam.DeadLetter](t, files[3])
	reasons := map[string]string{}
	for _, d := range dead {
		reasons[d.ID] = d.Reason
	}
	a := filepath.Join(in, "a.jsonl")
	wantDead := map[string]string{
		a + ":1001": "invalid JSON",
		a + ":1002": `no "id"`,
		a + ":1003": `no "text"`,
		a + ":1004": "invalid UTF-8",
		"x5":        "empty text",
		txt + ":3":  "empty text",
	}
	if len(dead) != len(wantDead) {
		t.Errorf("%d dead letters, want %d: %v", len(dead), len(wantDead), reasons)
	}
	for id, w := range wantDead {
		if !strings.Contains(reasons[id], w) {
			t.Errorf("dead letter %s: reason %q, want it to say %q", id, reasons[id], w)
		}
	}
	sums := map[string]int64{}
	for _, c := range res.Metrics().AllMetrics().Counters() {
		sums[c.Namespace()+"/"+c.Name()] += c.Result()
	}
	if sums["embrace/texts"] != int64(len(want)) || sums["embrace/dead_letters"] != 2 || sums["embed-corpus/lines"] != 1005+4 {
		t.Errorf("counters %v: want %d texts, 2 dead letters in Embed, 1009 lines", sums, len(want))
	}
}

func TestReadLine(t *testing.T) {
	in := "short\r\n" + strings.Repeat("x", 100) + "\nexact\n\nlast"
	r := bufio.NewReaderSize(strings.NewReader(in), 16)
	type line struct {
		s       string
		tooLong bool
	}
	var got []line
	for {
		l, tooLong, err := readLine(r, 10)
		if l == nil && err != nil {
			break
		}
		got = append(got, line{string(l), tooLong})
	}
	want := []line{{"short", false}, {"xxxxxxxxxx", true}, {"exact", false}, {"", false}, {"last", false}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("lines %v, want %v", got, want)
	}
}

func TestParseJSONL(t *testing.T) {
	rec, reason := parseJSONL([]byte(`{"id": 7, "text": "hi", "metadata": {"a": "b", "n": 3}}`))
	if reason != "" || rec.ID != "7" || rec.Text != "hi" || rec.Metadata["a"] != "b" || rec.Metadata["n"] != "3" {
		t.Errorf("got %+v %q", rec, reason)
	}
	for line, want := range map[string]string{
		`[1]`:                       "invalid JSON",
		`{"id": true, "text": ""}`:  "neither a string nor a number",
		`{"id": "a", "text": 5}`:    "invalid JSON",
		`{"id": null, "text": "a"}`: `no "id"`,
	} {
		if _, reason := parseJSONL([]byte(line)); !strings.Contains(reason, want) {
			t.Errorf("%s: reason %q, want %q", line, reason, want)
		}
	}
}

func TestCheckFlags(t *testing.T) {
	ctx := context.Background()
	ok := config{Input: testModel + "/config.json", Output: t.TempDir() + "/o", Format: "auto", Shards: 1, MaxLine: 10,
		Embed: ebeam.EmbedConfig{ModelConfig: ebeam.ModelConfig{Model: testModel}}}
	if err := ok.check(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		edit func(*config)
		want string
	}{
		{func(c *config) { c.Input = "" }, "--input"},
		{func(c *config) { c.Input = t.TempDir() + "/*.jsonl" }, "no file matches"},
		{func(c *config) { c.Output = "" }, "--output"},
		{func(c *config) { c.Output = "out/" }, "prefix"},
		{func(c *config) { c.Embed.Model = "" }, "--model"},
		{func(c *config) { c.Format = "csv" }, "--format"},
		{func(c *config) { c.Shards = 0 }, "--num_shards"},
		{func(c *config) { c.Shards = 100000 }, "--num_shards"},
	} {
		cfg := ok
		c.edit(&cfg)
		if err := cfg.check(ctx); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want one about %s", err, c.want)
		}
	}
}
