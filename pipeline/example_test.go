package pipeline_test

import (
	"context"
	"fmt"

	"github.com/embrace-go/embrace/pipeline"
)

// The testdata folders are tiny random-weight checkpoints, so the answers are
// arbitrary; the calls are the ones a real checkpoint takes.

func ExampleNewTextClassifier() {
	ctx := context.Background()
	c, err := pipeline.NewTextClassifier(ctx, "testdata/bert-cls", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	res, err := c.Classify(ctx, []string{"I love this library!"}, pipeline.ClassifyOptions{TopK: 2})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, l := range res[0] {
		fmt.Printf("%s %.3f\n", l.Label, l.Score)
	}
	// Output:
	// neutral 0.801
	// positive 0.165
}

func ExampleNewTokenClassifier() {
	ctx := context.Background()
	c, err := pipeline.NewTokenClassifier(ctx, "testdata/bert-ner", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	res, err := c.Classify(ctx, []string{"Clem Delangue founded Hugging Face in New York."},
		pipeline.TokenOptions{Aggregation: pipeline.AggregateFirst})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, e := range res[0] {
		fmt.Printf("%s %q [%d,%d)\n", e.Label, e.Word, e.Start, e.End)
	}
	// Output:
	// PER "clem delangue founded hugging face" [0,34)
	// ORG "in" [35,37)
	// PER "new york" [38,46)
	// LOC "." [46,47)
}

func ExampleNewQuestionAnswerer() {
	ctx := context.Background()
	qa, err := pipeline.NewQuestionAnswerer(ctx, "testdata/bert-qa", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer qa.Close()
	res, err := qa.Answer(ctx, []pipeline.QAInput{{
		Question: "Where was Hugging Face founded?",
		Context:  "Hugging Face was founded in New York in 2016 by three French founders.",
	}}, pipeline.QAOptions{TopK: 1})
	if err != nil {
		fmt.Println(err)
		return
	}
	a := res[0][0]
	fmt.Printf("%q %d %d %.4f\n", a.Answer, a.Start, a.End, a.Score)
	// Output: "French" 54 60 0.0081
}

func ExampleNewFillMask() {
	ctx := context.Background()
	fm, err := pipeline.NewFillMask(ctx, "testdata/bert-mlm", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer fm.Close()
	res, err := fm.Fill(ctx, []string{"The capital of France is " + fm.MaskToken() + "."}, pipeline.FillMaskOptions{TopK: 2})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, p := range res[0].Masks[0].Predictions {
		fmt.Printf("%d %q %.3f\n", p.Token, p.Sequence, p.Score)
	}
	// Output:
	// 112 "the capital of france is ᆸ." 0.169
	// 1070 "the capital of france isiew." 0.139
}

func ExampleNewSentenceEmbedder() {
	ctx := context.Background()
	st, err := pipeline.NewSentenceEmbedder(ctx, "testdata/minilm-st", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer st.Close()
	embs, err := st.Embed(ctx, []string{"Hello world!", "The quick brown fox."})
	if err != nil {
		fmt.Println(err)
		return
	}
	// Normalized embeddings: the dot product is the cosine similarity.
	var dot float32
	for i := range embs[0] {
		dot += embs[0][i] * embs[1][i]
	}
	fmt.Println(len(embs), st.Dim(), dot > -1 && dot < 1)
	// Output: 2 32 true
}

func ExampleNewFeatureExtractor() {
	ctx := context.Background()
	fe, err := pipeline.NewFeatureExtractor(ctx, "testdata/bert-cls", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer fe.Close()
	feats, err := fe.Extract(ctx, []string{"Hello world!"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(feats[0]), len(feats[0][0])) // tokens, hidden size
	// Output: 7 32
}
