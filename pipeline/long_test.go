package pipeline

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/embrace-go/embrace/tokenizer"
)

// wholeWords returns n words of tok's vocabulary that are one token each,
// in a fixed pseudo-random order: texts made of them tokenize word by word,
// so a window's slice of the text tokenizes to exactly the window's tokens.
func wholeWords(t *testing.T, tok *tokenizer.Tokenizer, n int) []string {
	t.Helper()
	var vocab []string
	for id := 0; id < tok.VocabSize(); id++ {
		w, ok := tok.IDToToken(id)
		if !ok || len(w) < 3 || strings.Trim(w, "abcdefghijklmnopqrstuvwxyz") != "" {
			continue
		}
		if enc, err := tok.Encode(w, false); err == nil && len(enc.IDs) == 1 && enc.IDs[0] == id {
			vocab = append(vocab, w)
		}
	}
	if len(vocab) < 20 {
		t.Fatalf("only %d whole-word tokens in the vocabulary", len(vocab))
	}
	out := make([]string, n)
	x := uint32(12345)
	for i := range out {
		x = x*1664525 + 1013904223
		out[i] = vocab[int(x>>8)%len(vocab)]
	}
	return out
}

// windowTexts returns the slice of text each window of enc (and its
// overflowing parts) covers in sequence seq, with its byte offset.
func windowTexts(enc *tokenizer.Encoding, text string, seq int) (parts []string, starts []int) {
	for _, w := range append([]*tokenizer.Encoding{enc}, enc.Overflowing...) {
		lo, hi := -1, -1
		for j, s := range w.SequenceIDs {
			if s == seq && w.SpecialTokensMask[j] == 0 {
				if lo < 0 {
					lo = w.Offsets[j].Start
				}
				hi = w.Offsets[j].End
			}
		}
		parts, starts = append(parts, text[lo:hi]), append(starts, lo)
	}
	return parts, starts
}

func openQA(t *testing.T, opt *Options) *QuestionAnswerer {
	t.Helper()
	qa, err := NewQuestionAnswerer(context.Background(), filepath.Join("testdata", "bert-qa"), opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { qa.Close() })
	return qa
}

// A context several windows long gives the answers of its windows run one
// by one (each window's slice of the context as a context of its own),
// offsets moved into the long context, merged best first; with
// HandleImpossibleAnswer the null answer scores the smallest null score of
// the windows.
func TestQuestionAnsweringWindows(t *testing.T) {
	qa := openQA(t, nil)
	ctx := context.Background()
	words := wholeWords(t, qa.enc.tok, 160)
	question := strings.Join(words[150:154], " ") + "?"
	long := strings.Join(words[:150], " ")
	for _, impossible := range []bool{false, true} {
		opt := QAOptions{TopK: 12, HandleImpossibleAnswer: impossible}
		if impossible {
			opt.TopK = 1 << 20 // every span, so the null answer is among them
		}
		res, infos, err := qa.AnswerWithInfo(ctx, []QAInput{{question, long}, {question, words[0]}}, opt)
		if err != nil {
			t.Fatal(err)
		}
		full, _ := qa.defaults(opt)
		enc, err := qa.enc.untruncated.WithTruncation(&tokenizer.TruncationParams{MaxLength: full.MaxSeqLen, Strategy: tokenizer.TruncateOnlySecond, Stride: full.DocStride}).EncodePair(question, long, true)
		if err != nil {
			t.Fatal(err)
		}
		parts, starts := windowTexts(enc, long, 1)
		if len(parts) < 4 || infos[0] != (InputInfo{Windows: len(parts)}) || infos[1] != (InputInfo{Windows: 1}) {
			t.Fatalf("%d windows, infos %+v", len(parts), infos)
		}
		// The windows one by one.
		var want []Answer
		null := math.Inf(1)
		for k, p := range parts {
			one, oneInfo, err := qa.AnswerWithInfo(ctx, []QAInput{{question, p}}, QAOptions{TopK: 1 << 20, HandleImpossibleAnswer: impossible})
			if err != nil {
				t.Fatal(err)
			}
			if oneInfo[0].Windows != 1 {
				t.Fatalf("window %d is %d windows on its own", k, oneInfo[0].Windows)
			}
			n := 0
			for _, a := range one[0] {
				if a.Answer == "" && a.End == 0 {
					null = min(null, a.Score)
					continue
				}
				// Each window gives its best TopK spans.
				if n++; n > opt.TopK {
					continue
				}
				a.Start, a.End = a.Start+starts[k], a.End+starts[k]
				a.StartRune, a.EndRune = a.Start, a.End // the text is ASCII
				want = append(want, a)
			}
		}
		if impossible {
			want = append(want, Answer{Score: null})
		}
		sort.SliceStable(want, func(a, b int) bool { return want[a].Score > want[b].Score })
		want = want[:min(len(want), opt.TopK)]
		got := res[0]
		if len(got) != len(want) {
			t.Fatalf("impossible %v: %d answers, want %d", impossible, len(got), len(want))
		}
		later := false
		for i, g := range got {
			w := want[i]
			if g.Start != w.Start || g.End != w.End || g.StartRune != w.StartRune || g.EndRune != w.EndRune || g.Answer != w.Answer || math.Abs(g.Score-w.Score) > 1e-6 {
				t.Errorf("impossible %v: answer %d: %+v, want %+v", impossible, i, g, w)
			}
			if g.Answer != long[g.Start:g.End] {
				t.Errorf("answer %q at %d..%d", g.Answer, g.Start, g.End)
			}
			later = later || g.Start >= starts[0]+len(parts[0])
		}
		if !later {
			t.Errorf("impossible %v: no answer from beyond the first window: %+v", impossible, got)
		}
		if nulls := countNull(got); impossible && (nulls != 1 || !(null > 0 && null < 1)) || !impossible && nulls != 0 {
			t.Errorf("impossible %v: %d null answers, null score %v", impossible, nulls, null)
		}
	}
}

func countNull(as []Answer) int {
	n := 0
	for _, a := range as {
		if a.Answer == "" && a.Start == 0 && a.End == 0 {
			n++
		}
	}
	return n
}

// Questions: MaxQuestionLen cuts them (the answers are those of the cut
// question); one too long for the window is cut to fit, or refused with
// truncation off; a window longer than the model is refused.
func TestQuestionAnsweringQuestionLength(t *testing.T) {
	qa, off := openQA(t, nil), openQA(t, &Options{Truncation: TruncateOff})
	ctx := context.Background()
	words := wholeWords(t, qa.enc.tok, 300)
	passage := strings.Join(words[:120], " ")
	question := strings.Join(words[200:210], " ")

	cut, infos, err := qa.AnswerWithInfo(ctx, []QAInput{{question, passage}}, QAOptions{TopK: 3, MaxQuestionLen: 4})
	if err != nil || !infos[0].Truncated {
		t.Fatalf("%v %+v", err, infos)
	}
	want, infos, err := off.AnswerWithInfo(ctx, []QAInput{{strings.Join(words[200:204], " "), passage}}, QAOptions{TopK: 3})
	if err != nil || infos[0].Truncated {
		t.Fatalf("%v %+v", err, infos)
	}
	if len(cut[0]) != 3 || len(want[0]) != 3 {
		t.Fatalf("%d and %d answers", len(cut[0]), len(want[0]))
	}
	for i := range want[0] {
		if g, w := cut[0][i], want[0][i]; g.Start != w.Start || g.End != w.End || math.Abs(g.Score-w.Score) > 1e-9 {
			t.Errorf("answer %d: %+v, want %+v", i, g, w)
		}
	}

	// 60 question tokens leave no room in a 64-token window with stride 32.
	long := strings.Join(words[200:260], " ")
	if _, err := off.Answer(ctx, []QAInput{{long, passage}}, QAOptions{}); !errors.Is(err, ErrTooLong) {
		t.Errorf("long question, truncation off: %v", err)
	}
	res, infos, err := qa.AnswerWithInfo(ctx, []QAInput{{long, passage}}, QAOptions{})
	if err != nil || !infos[0].Truncated || infos[0].Windows < 2 || len(res[0]) != 1 {
		t.Errorf("long question, truncation on: %v %+v %+v", err, infos, res)
	}
	// A short context fits in one window whatever the question's length.
	if _, infos, err := off.AnswerWithInfo(ctx, []QAInput{{strings.Join(words[200:240], " "), words[0]}}, QAOptions{}); err != nil || infos[0] != (InputInfo{Windows: 1}) {
		t.Errorf("short context: %v %+v", err, infos)
	}
	if _, err := qa.Answer(ctx, []QAInput{{question, passage}}, QAOptions{MaxSeqLen: 65}); !errors.Is(err, ErrTooLong) {
		t.Errorf("window longer than the model: %v", err)
	}
	if _, err := qa.Answer(ctx, []QAInput{{question, passage}}, QAOptions{MaxSeqLen: 6, DocStride: 2}); !errors.Is(err, ErrTooLong) {
		t.Errorf("window too short for the question's special tokens and stride: %v", err)
	}
}

func openNER(t *testing.T, opt *Options) *TokenClassifier {
	t.Helper()
	tc, err := NewTokenClassifier(context.Background(), filepath.Join("testdata", "bert-ner"), opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tc.Close() })
	return tc
}

var aggregations = []Aggregation{AggregateNone, AggregateSimple, AggregateFirst, AggregateAverage, AggregateMax}

// A text several windows long, with a stride, gives what its windows give
// one by one (each window's slice of the text as a text of its own), moved
// into the long text and merged as Hugging Face merges overlapping
// entities, for every aggregation.
func TestTokenClassificationStride(t *testing.T) {
	tc := openNER(t, nil)
	ctx := context.Background()
	words := wholeWords(t, tc.enc.tok, 200)
	long := strings.Join(words, " ")
	const stride = 16
	full, err := tc.enc.untruncated.Encode(long, true)
	if err != nil {
		t.Fatal(err)
	}
	tokenAt := map[int]int{} // byte offset of a token's start -> its index in the whole text's encoding
	for j, o := range full.Offsets {
		if full.SpecialTokensMask[j] == 0 {
			tokenAt[o.Start] = j
		}
	}
	enc, err := tc.enc.untruncated.WithTruncation(&tokenizer.TruncationParams{MaxLength: 64, Stride: stride}).Encode(long, true)
	if err != nil {
		t.Fatal(err)
	}
	parts, starts := windowTexts(enc, long, 0)
	if len(parts) < 4 {
		t.Fatalf("%d windows", len(parts))
	}
	for _, ignore := range [][]string{nil, {}} {
		for _, agg := range aggregations {
			opt := TokenOptions{Aggregation: agg, IgnoreLabels: ignore}
			var windows [][]Entity
			for k, p := range parts {
				one, infos, err := tc.ClassifyWithInfo(ctx, []string{p}, opt)
				if err != nil || infos[0] != (InputInfo{Windows: 1}) {
					t.Fatalf("window %d: %v %+v", k, err, infos)
				}
				for i := range one[0] {
					e := &one[0][i]
					e.Start, e.End = e.Start+starts[k], e.End+starts[k]
					e.StartRune, e.EndRune = e.Start, e.End // ASCII
					if e.Index >= 0 {
						e.Index = tokenAt[e.Start]
					}
				}
				windows = append(windows, one[0])
			}
			want := mergeWindows(windows)
			opt.Stride = stride
			got, infos, err := tc.ClassifyWithInfo(ctx, []string{long, words[0]}, opt)
			if err != nil {
				t.Fatal(err)
			}
			if infos[0] != (InputInfo{Windows: len(parts)}) || infos[1] != (InputInfo{Windows: 1}) {
				t.Errorf("%s: infos %+v", agg, infos)
			}
			if len(got[0]) != len(want) || len(want) == 0 {
				t.Fatalf("%s ignore %v: %d entities, want %d", agg, ignore, len(got[0]), len(want))
			}
			for i, g := range got[0] {
				w := want[i]
				if g.Label != w.Label || g.Index != w.Index || g.Word != w.Word || g.Start != w.Start || g.End != w.End ||
					g.StartRune != w.StartRune || g.EndRune != w.EndRune || math.Abs(g.Score-w.Score) > 1e-6 {
					t.Errorf("%s ignore %v: entity %d: %+v, want %+v", agg, ignore, i, g, w)
				}
			}
			if ignore != nil && agg == AggregateNone {
				// Every token of the text once, at its place in the whole
				// text's encoding.
				if n := len(full.IDs) - 2; len(got[0]) != n {
					t.Errorf("none: %d entities for %d tokens", len(got[0]), n)
				}
				for i, g := range got[0] {
					if g.Index != i+1 || g.Word != full.Tokens[i+1] {
						t.Errorf("none: entity %d: %+v", i, g)
					}
				}
			}
		}
	}
}

// The overlap rule of Hugging Face's aggregate_overlapping_entities: sorted
// by start, an entity starting inside the one kept before it replaces it
// when longer, or as long and better scored; otherwise it is dropped.
func TestMergeWindows(t *testing.T) {
	e := func(label string, start, end int, score float64) Entity {
		return Entity{Label: label, Start: start, End: end, Score: score, Index: -1}
	}
	got := mergeWindows([][]Entity{
		{e("A", 0, 5, 0.9), e("B", 10, 14, 0.5), e("C", 20, 22, 0.7)},
		{e("B2", 10, 14, 0.6), e("C2", 20, 30, 0.1), e("D", 21, 23, 0.99), e("E", 40, 41, 0.3)},
		{e("E2", 40, 41, 0.3), e("F", 3, 4, 1)},
	})
	want := []Entity{e("A", 0, 5, 0.9), e("B2", 10, 14, 0.6), e("C2", 20, 30, 0.1), e("E", 40, 41, 0.3)}
	if len(got) != len(want) {
		t.Fatalf("%+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("%d: %+v, want %+v", i, got[i], want[i])
		}
	}
	// One window: untouched, overlaps included.
	one := []Entity{e("A", 0, 5, 0.9), e("B", 2, 3, 0.5)}
	if got := mergeWindows([][]Entity{one}); len(got) != 2 {
		t.Errorf("one window: %+v", got)
	}
	if got := mergeWindows([][]Entity{nil, nil}); len(got) != 0 {
		t.Errorf("no entities: %+v", got)
	}
}

// A long text of several-token words: with a stride every token is
// labelled once (aggregation none) and entities of every aggregation are
// ordered, disjoint and point into the text; a text that fits one window
// gives the same with and without a stride.
func TestTokenClassificationStrideSubwords(t *testing.T) {
	tc := openNER(t, nil)
	ctx := context.Background()
	text := strings.Repeat("Hugging Face was founded in New York in 2016 by three French founders, naïvely. ", 12)
	full, err := tc.enc.untruncated.Encode(text, true)
	if err != nil {
		t.Fatal(err)
	}
	short := text[:80]
	for _, agg := range aggregations {
		got, infos, err := tc.ClassifyWithInfo(ctx, []string{text, short}, TokenOptions{Aggregation: agg, IgnoreLabels: []string{}, Stride: 5})
		if err != nil {
			t.Fatal(err)
		}
		if infos[0].Windows < 3 || infos[0].Truncated {
			t.Errorf("%s: %+v", agg, infos)
		}
		prevEnd := 0
		for i, g := range got[0] {
			if g.Start < prevEnd || g.Start >= g.End || g.End > len(text) ||
				g.StartRune != runeIndex(text, g.Start) || g.EndRune != runeIndex(text, g.End) {
				t.Errorf("%s: entity %d: %+v after %d", agg, i, g, prevEnd)
			}
			prevEnd = g.End
		}
		if agg == AggregateNone {
			if n := len(full.IDs) - 2; len(got[0]) != n {
				t.Errorf("none: %d entities for %d tokens", len(got[0]), n)
			}
			for i, g := range got[0] {
				if g.Index != i+1 || g.Start != full.Offsets[i+1].Start {
					t.Errorf("none: entity %d: %+v", i, g)
				}
			}
		}
		plain, err := tc.Classify(ctx, []string{short}, TokenOptions{Aggregation: agg, IgnoreLabels: []string{}})
		if err != nil {
			t.Fatal(err)
		}
		if len(plain[0]) != len(got[1]) {
			t.Fatalf("%s: %d entities with a stride, %d without", agg, len(got[1]), len(plain[0]))
		}
		for i := range plain[0] {
			if !sameEntity(plain[0][i], got[1][i]) {
				t.Errorf("%s: %+v with a stride, %+v without", agg, got[1][i], plain[0][i])
			}
		}
	}
	if _, err := tc.Classify(ctx, []string{text}, TokenOptions{Stride: 62}); err == nil {
		t.Error("a stride as long as the window gave no error")
	}
	if _, err := tc.Classify(ctx, []string{text}, TokenOptions{Stride: -1}); err == nil {
		t.Error("a negative stride gave no error")
	}
}

// cutAt returns text up to the end of its n-th token (special tokens not
// counted).
func cutAt(t *testing.T, tok *tokenizer.Tokenizer, text string, n int) string {
	t.Helper()
	enc, err := tok.WithTruncation(nil).Encode(text, false)
	if err != nil || len(enc.IDs) < n {
		t.Fatalf("%v: %d tokens", err, len(enc.IDs))
	}
	return text[:enc.Offsets[n-1].End]
}

// The one length policy: by default every pipeline cuts a text longer than
// the model to its first tokens and says so (the result is the cut text's);
// with TruncateOff the same text is an error wrapping ErrTooLong naming it.
func TestTruncationPolicy(t *testing.T) {
	ctx := context.Background()
	long := strings.Repeat("the quick brown fox jumps over the lazy dog. ", 20)
	texts := []string{"a short text", long}
	offOpt := &Options{Truncation: TruncateOff}
	wantInfos := func(t *testing.T, what string, infos []InputInfo) {
		t.Helper()
		if len(infos) != 2 || infos[0] != (InputInfo{Windows: 1}) || infos[1] != (InputInfo{Truncated: true, Windows: 1}) {
			t.Errorf("%s: infos %+v", what, infos)
		}
	}
	tooLong := func(t *testing.T, what string, err error) {
		t.Helper()
		if !errors.Is(err, ErrTooLong) || !strings.Contains(err.Error(), "text 1") {
			t.Errorf("%s with truncation off: %v", what, err)
		}
	}

	t.Run("classify", func(t *testing.T) {
		dir := filepath.Join("testdata", "bert-cls")
		on, err := NewTextClassifier(ctx, dir, &Options{Truncation: TruncateOn})
		if err != nil {
			t.Fatal(err)
		}
		defer on.Close()
		off, err := NewTextClassifier(ctx, dir, offOpt)
		if err != nil {
			t.Fatal(err)
		}
		defer off.Close()
		got, infos, err := on.ClassifyWithInfo(ctx, texts, ClassifyOptions{})
		if err != nil {
			t.Fatal(err)
		}
		wantInfos(t, "classify", infos)
		_, err = off.Classify(ctx, texts, ClassifyOptions{})
		tooLong(t, "classify", err)
		want, err := off.Classify(ctx, []string{cutAt(t, on.enc.tok, long, 62)}, ClassifyOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for i := range want[0] {
			if got[1][i].Label != want[0][i].Label || math.Abs(got[1][i].Score-want[0][i].Score) > 1e-6 {
				t.Errorf("truncated %+v, cut text %+v", got[1], want[0])
			}
		}
	})

	t.Run("token", func(t *testing.T) {
		on, off := openNER(t, nil), openNER(t, offOpt)
		got, infos, err := on.ClassifyWithInfo(ctx, texts, TokenOptions{Aggregation: AggregateSimple, IgnoreLabels: []string{}})
		if err != nil {
			t.Fatal(err)
		}
		wantInfos(t, "token", infos)
		_, err = off.Classify(ctx, texts, TokenOptions{})
		tooLong(t, "token classification", err)
		cut := cutAt(t, on.enc.tok, long, 62)
		want, err := off.Classify(ctx, []string{cut}, TokenOptions{Aggregation: AggregateSimple, IgnoreLabels: []string{}})
		if err != nil {
			t.Fatal(err)
		}
		if len(got[1]) != len(want[0]) || got[1][len(got[1])-1].End != len(cut) {
			t.Fatalf("truncated %+v, cut text %+v", got[1], want[0])
		}
		for i := range want[0] {
			if !sameEntity(got[1][i], want[0][i]) {
				t.Errorf("truncated %+v, cut text %+v", got[1][i], want[0][i])
			}
		}
		// A stride splits instead of cutting, truncation on or off.
		if _, infos, err := off.ClassifyWithInfo(ctx, texts, TokenOptions{Aggregation: AggregateFirst, Stride: 8}); err != nil || infos[1].Truncated || infos[1].Windows < 2 {
			t.Errorf("stride with truncation off: %v %+v", err, infos)
		}
	})

	t.Run("fill-mask", func(t *testing.T) {
		dir := filepath.Join("testdata", "bert-mlm")
		on, err := NewFillMask(ctx, dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer on.Close()
		off, err := NewFillMask(ctx, dir, offOpt)
		if err != nil {
			t.Fatal(err)
		}
		defer off.Close()
		masked := []string{"a short " + on.MaskToken(), on.MaskToken() + " " + long}
		res, infos, err := on.FillWithInfo(ctx, masked, FillMaskOptions{TopK: 2})
		if err != nil || len(res[1].Masks) != 1 {
			t.Fatalf("%v %+v", err, res)
		}
		wantInfos(t, "fill-mask", infos)
		_, err = off.Fill(ctx, masked, FillMaskOptions{})
		tooLong(t, "fill-mask", err)
		if _, err := on.Fill(ctx, []string{long + on.MaskToken()}, FillMaskOptions{}); err == nil || !strings.Contains(err.Error(), "truncation") {
			t.Errorf("mask cut off: %v", err)
		}
	})

	t.Run("sentence", func(t *testing.T) {
		dir := filepath.Join("testdata", "minilm-st")
		on, err := NewSentenceEmbedder(ctx, dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer on.Close()
		off, err := NewSentenceEmbedder(ctx, dir, offOpt)
		if err != nil {
			t.Fatal(err)
		}
		defer off.Close()
		got, infos, err := on.EmbedWithInfo(ctx, texts)
		if err != nil {
			t.Fatal(err)
		}
		wantInfos(t, "sentence", infos)
		plain, err := on.Embed(ctx, texts)
		if err != nil || len(plain) != 2 {
			t.Fatal(err)
		}
		_, err = off.Embed(ctx, texts)
		tooLong(t, "sentence embedding", err)
		want, err := off.Embed(ctx, []string{cutAt(t, on.enc.tok, long, on.MaxSeqLength()-2)})
		if err != nil {
			t.Fatal(err)
		}
		for j := range want[0] {
			if math.Abs(float64(got[1][j]-want[0][j])) > 1e-6 || got[1][j] != plain[1][j] {
				t.Fatalf("dim %d: truncated %v, cut text %v, Embed %v", j, got[1][j], want[0][j], plain[1][j])
			}
		}
	})

	t.Run("feature-extraction", func(t *testing.T) {
		dir := filepath.Join("testdata", "bert-cls")
		on, err := NewFeatureExtractor(ctx, dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer on.Close()
		off, err := NewFeatureExtractor(ctx, dir, offOpt)
		if err != nil {
			t.Fatal(err)
		}
		defer off.Close()
		got, infos, err := on.ExtractWithInfo(ctx, texts)
		if err != nil || len(got[1]) != 64 {
			t.Fatalf("%v: %d vectors", err, len(got[1]))
		}
		wantInfos(t, "features", infos)
		_, err = off.Extract(ctx, texts)
		tooLong(t, "feature extraction", err)
	})

	t.Run("rerank", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "rerank")
		deriveReranker(t, dir)
		on, err := NewReranker(ctx, dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer on.Close()
		off, err := NewReranker(ctx, dir, offOpt)
		if err != nil {
			t.Fatal(err)
		}
		defer off.Close()
		res, err := on.Score(ctx, [][2]string{{"query", texts[0]}, {"query", long}}, RerankOptions{})
		if err != nil || res[0].Truncated || !res[1].Truncated {
			t.Errorf("%v %+v", err, res)
		}
		_, err = off.Score(ctx, [][2]string{{"query", texts[0]}, {"query", long}}, RerankOptions{})
		if !errors.Is(err, ErrTooLong) || !strings.Contains(err.Error(), "pair 1") {
			t.Errorf("rerank with truncation off: %v", err)
		}
	})

	t.Run("zero-shot", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "nli")
		deriveNLI(t, dir)
		on, err := NewZeroShotClassifier(ctx, dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer on.Close()
		off, err := NewZeroShotClassifier(ctx, dir, offOpt)
		if err != nil {
			t.Fatal(err)
		}
		defer off.Close()
		labels := []string{"animals", "sport"}
		for i, text := range texts {
			_, info, err := on.ClassifyWithInfo(ctx, text, labels, ZeroShotOptions{})
			if err != nil || info != (InputInfo{Truncated: i == 1, Windows: 1}) {
				t.Errorf("text %d: %v %+v", i, err, info)
			}
		}
		if _, err := off.Classify(ctx, long, labels, ZeroShotOptions{}); !errors.Is(err, ErrTooLong) {
			t.Errorf("zero-shot with truncation off: %v", err)
		}
	})

	if _, err := NewTextClassifier(ctx, filepath.Join("testdata", "bert-cls"), &Options{Truncation: 7}); err == nil {
		t.Error("unknown truncation policy accepted")
	}
}

// sameEntity compares entities, scores within 1e-6 (batches pad
// differently).
func sameEntity(a, b Entity) bool {
	d := math.Abs(a.Score - b.Score)
	a.Score, b.Score = 0, 0
	return a == b && d <= 1e-6
}

// AlignToWords widens answers to whole words without changing their scores
// or order.
func TestQuestionAnsweringAlignToWords(t *testing.T) {
	qa := openQA(t, nil)
	ctx := context.Background()
	in := []QAInput{{"Who ported the model?", strings.Repeat("Thomas ported the BERT model from TensorFlow to PyTorch over a weekend. ", 6)}}
	plain, err := qa.Answer(ctx, in, QAOptions{TopK: 20})
	if err != nil {
		t.Fatal(err)
	}
	aligned, err := qa.Answer(ctx, in, QAOptions{TopK: 20, AlignToWords: true})
	if err != nil {
		t.Fatal(err)
	}
	text := in[0].Context
	isWord := func(i int) bool {
		c := text[i]
		return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
	}
	widened := 0
	if len(aligned[0]) != 20 || len(plain[0]) != 20 {
		t.Fatalf("%d and %d answers", len(aligned[0]), len(plain[0]))
	}
	for i, a := range aligned[0] {
		p := plain[0][i]
		if a.Score != p.Score || a.Start > p.Start || a.End < p.End || a.Answer != text[a.Start:a.End] ||
			a.StartRune != a.Start || a.EndRune != a.End {
			t.Errorf("answer %d: aligned %+v, token span %+v", i, a, p)
		}
		if a.Start > 0 && isWord(a.Start) && isWord(a.Start-1) || a.End < len(text) && isWord(a.End-1) && isWord(a.End) {
			t.Errorf("answer %d is not whole words: %q", i, a.Answer)
		}
		if a.Start != p.Start || a.End != p.End {
			widened++
		}
	}
	if widened == 0 {
		t.Error("no answer was widened")
	}
}

// Byte offsets map to code points the way tokenizer.Encoding.CharOffsets
// maps them, whichever helper does it: an offset inside a character maps to
// that character, an invalid byte counts as one.
func TestCharIndex(t *testing.T) {
	s := "aé😀\xffz ü"
	ti := newTextIndex(s)
	want := []int{0, 1, 1, 2, 2, 2, 2, 3, 4, 5, 6, 6, 7}
	if len(want) != len(s)+1 {
		t.Fatalf("%d offsets", len(s)+1)
	}
	for b, w := range want {
		if c, d := charIndex(s, b), ti.char(b); c != w || d != w {
			t.Errorf("byte %d: charIndex %d, textIndex %d, want %d", b, c, d, w)
		}
	}
	if got := ti.runes(s, 1, 3); got != "é😀" {
		t.Errorf("runes 1..3: %q", got)
	}
	if ti.char(-1) != 0 || ti.char(100) != 7 || ti.runes(s, 5, 99) != " ü" {
		t.Error("clamping")
	}
}
