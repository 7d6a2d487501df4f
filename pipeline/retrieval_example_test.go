package pipeline_test

import (
	"context"
	"fmt"

	"github.com/embrace-go/embrace/pipeline"
)

// testdata/bert-rerank and testdata/bert-nli are testdata/bert-cls reshaped
// into a cross-encoder (its first label alone) and an NLI model (its labels
// renamed): random weights, so the rankings are arbitrary.

func ExampleNewReranker() {
	ctx := context.Background()
	r, err := pipeline.NewReranker(ctx, "testdata/bert-rerank", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()
	passages := []string{
		"Berlin has a population of 3,520,031 registered inhabitants.",
		"New York City is famous for the Metropolitan Museum of Art.",
		"Berlin is the capital of Germany.",
	}
	res, err := r.Rerank(ctx, "How many people live in Berlin?", passages, pipeline.RerankOptions{TopK: 2})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, p := range res {
		fmt.Printf("%d %.3f %q\n", p.Index, p.Score, p.Text)
	}
	// Output:
	// 2 0.876 "Berlin is the capital of Germany."
	// 0 0.824 "Berlin has a population of 3,520,031 registered inhabitants."
}

func ExampleNewZeroShotClassifier() {
	ctx := context.Background()
	z, err := pipeline.NewZeroShotClassifier(ctx, "testdata/bert-nli", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer z.Close()
	res, err := z.Classify(ctx, "I have a problem with my iphone that needs to be resolved asap!!",
		[]string{"urgent", "not urgent", "phone", "tablet"}, pipeline.ZeroShotOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, l := range res {
		fmt.Printf("%s %.3f\n", l.Label, l.Score)
	}
	// Output:
	// not urgent 0.456
	// phone 0.197
	// urgent 0.174
	// tablet 0.173
}
