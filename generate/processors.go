package generate

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
)

var negInf = float32(math.Inf(-1))

// chooser applies the logits processors and picks the next token of one
// sequence at a time. Its buffers are sized once for the vocabulary, so a
// step allocates nothing.
type chooser struct {
	cfg   *Config
	vocab int
	seen  []uint32 // seen[t] == stamp: t already penalized this step
	stamp uint32
	order []int32   // token ids by descending score (sampling)
	probs []float64 // softmax scratch (sampling)
	rng   *rand.Rand
}

func newChooser(cfg *Config, vocab int) *chooser {
	c := &chooser{cfg: cfg, vocab: vocab}
	if cfg.RepetitionPenalty != 1 {
		c.seen = make([]uint32, vocab)
	}
	if cfg.DoSample {
		c.order = make([]int32, vocab)
		c.probs = make([]float64, vocab)
		c.rng = rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))
	}
	return c
}

// next processes scores (one sequence's logits, modified in place) given the
// sequence so far (prompt, padding and generated tokens: what transformers
// calls input_ids) and the number of tokens generated, and returns the
// chosen token.
func (c *chooser) next(scores []float32, seq []int, generated int) (int, error) {
	cfg := c.cfg
	if cfg.RepetitionPenalty != 1 {
		c.repetitionPenalty(scores, seq)
	}
	if cfg.NoRepeatNGramSize > 0 {
		noRepeatNGram(scores, seq, cfg.NoRepeatNGramSize)
	}
	if len(seq) < cfg.MinLength || generated < cfg.MinNewTokens {
		for _, e := range cfg.EOSTokenIDs {
			if e >= 0 && e < len(scores) {
				scores[e] = negInf
			}
		}
	}
	if !cfg.DoSample {
		return argmax(scores), nil
	}
	return c.sample(scores)
}

// repetitionPenalty follows RepetitionPenaltyLogitsProcessor: each distinct
// token of seq once, negative logits multiplied, positive ones divided, in
// float32 as PyTorch computes them.
func (c *chooser) repetitionPenalty(scores []float32, seq []int) {
	c.stamp++
	if c.stamp == 0 { // wrapped: old marks could collide
		clear(c.seen)
		c.stamp = 1
	}
	p := float32(c.cfg.RepetitionPenalty)
	for _, t := range seq {
		if t < 0 || t >= len(scores) || c.seen[t] == c.stamp {
			continue
		}
		c.seen[t] = c.stamp
		if s := scores[t]; s < 0 {
			scores[t] = s * p
		} else {
			scores[t] = s / p
		}
	}
}

// noRepeatNGram follows NoRepeatNGramLogitsProcessor: every token that
// would complete an n-gram already present in seq is banned.
func noRepeatNGram(scores []float32, seq []int, n int) {
	cur := len(seq)
	if cur+1 < n {
		return
	}
	prefix := seq[cur-n+1:]
	for i := 0; i+n <= cur; i++ {
		if slices.Equal(seq[i:i+n-1], prefix) {
			if t := seq[i+n-1]; t >= 0 && t < len(scores) {
				scores[t] = negInf
			}
		}
	}
}

// argmax returns the first index of the largest value, as torch.argmax.
func argmax(s []float32) int {
	best, at := negInf, 0
	for i, v := range s {
		if v > best {
			best, at = v, i
		}
	}
	return at
}

var errNoCandidates = errors.New("generate: every token was filtered out; nothing to sample")

// softmax writes the softmax of s into p (float64) and returns the largest
// probability.
func softmax(p []float64, s []float32) float64 {
	mx := negInf
	for _, v := range s {
		mx = max(mx, v)
	}
	if math.IsInf(float64(mx), -1) {
		clear(p)
		return 0
	}
	var sum float64
	for i, v := range s {
		e := math.Exp(float64(v - mx))
		p[i] = e
		sum += e
	}
	inv := 1 / sum
	top := 0.0
	for i := range p {
		p[i] *= inv
		top = max(top, p[i])
	}
	return top
}

// sample applies the warpers in transformers' order (temperature, top-k,
// top-p, min-p), then draws from the distribution.
func (c *chooser) sample(scores []float32) (int, error) {
	cfg := c.cfg
	if cfg.Temperature != 1 {
		t := float32(cfg.Temperature)
		for i := range scores {
			scores[i] /= t
		}
	}
	// One ordering by descending score serves every warper: each only sets
	// a tail of it to -Inf, which keeps the order.
	order := c.order
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int {
		sa, sb := scores[a], scores[b]
		switch {
		case sa > sb:
			return -1
		case sa < sb:
			return 1
		}
		return int(a - b)
	})
	if cfg.TopK > 0 && cfg.TopK < len(scores) {
		// TopKLogitsWarper: drop what is below the k-th largest value (ties
		// with it stay).
		thr := scores[order[cfg.TopK-1]]
		for _, t := range order[cfg.TopK:] {
			if scores[t] < thr {
				scores[t] = negInf
			}
		}
	}
	if cfg.TopP < 1 {
		// TopPLogitsWarper: accumulate probabilities from the least likely
		// token up; those whose cumulative mass stays <= 1-top_p go, the most
		// likely token always stays.
		softmax(c.probs, scores)
		var cum float32
		lim := float32(1 - cfg.TopP)
		for i := len(order) - 1; i >= 1; i-- {
			t := order[i]
			cum += float32(c.probs[t])
			if cum > lim {
				break
			}
			scores[t] = negInf
		}
	}
	if cfg.MinP > 0 {
		// MinPLogitsWarper: drop tokens below min_p × the top probability,
		// keeping the most likely one.
		top := softmax(c.probs, scores)
		thr := cfg.MinP * top
		for _, t := range order[1:] {
			if c.probs[t] < thr {
				scores[t] = negInf
			}
		}
	}
	if softmax(c.probs, scores) == 0 {
		return 0, errNoCandidates
	}
	u := c.rng.Float64()
	var cum float64
	last := int(order[0])
	for _, t := range order {
		p := c.probs[t]
		if p == 0 {
			continue
		}
		last = int(t)
		cum += p
		if u < cum {
			return int(t), nil
		}
	}
	return last, nil // rounding left u just above the total
}
