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
		enc, err := qa.enc.untruncated.WithTruncation(&tokenizer.TruncationParams{MaxLength: full.MaxSeqLen, Strategy: "only_second", Stride: full.DocStride}).EncodePair(question, long, true)
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
