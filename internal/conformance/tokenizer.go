package conformance

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/embrace-go/embrace/tokenizer"
)

// tokCase is one line of cases.jsonl.
type tokCase struct {
	Kind              string   `json:"kind"`
	Text              string   `json:"text"`
	TextPair          *string  `json:"text_pair"`
	Texts             []string `json:"texts"`
	AddSpecialTokens  *bool    `json:"add_special_tokens"`
	TruncationMaxLen  int      `json:"truncation_max_length"`
	Padding           string   `json:"padding"`
	PadToken          string   `json:"pad_token"`
	IDs               json.RawMessage
	Tokens            []string        `json:"tokens"`
	Offsets           [][2]int        `json:"offsets"`
	TypeIDs           json.RawMessage `json:"type_ids"`
	AttentionMask     json.RawMessage `json:"attention_mask"`
	SpecialTokensMask []int           `json:"special_tokens_mask"`
	WordIDs           []*int          `json:"word_ids"`
	Decoded           *string         `json:"decoded"`
	DecodedWith       *string         `json:"decoded_with_special"`
}

// checkTokenizer runs every case of cases.jsonl through the tokenizer loaded
// from tokenizer.json and, separately, from the legacy files.
func checkTokenizer(dir string, r *Report) {
	cases, err := readCases(filepath.Join(dir, "cases.jsonl"))
	if err != nil {
		r.Fail("%v", err)
		return
	}
	loaders := []struct {
		name string
		load func(string) (*tokenizer.Tokenizer, error)
		need string
	}{
		{"tokenizer.json", func(d string) (*tokenizer.Tokenizer, error) {
			return tokenizer.FromFile(filepath.Join(d, "tokenizer.json"))
		}, "tokenizer.json"},
		{"legacy files", tokenizer.FromLegacyDir, "tokenizer_config.json"},
	}
	for _, l := range loaders {
		if !exists(filepath.Join(dir, l.need)) {
			continue
		}
		tok, err := l.load(dir)
		if !r.Check(l.name+": load", err) {
			continue
		}
		failed := 0
		for i, c := range cases {
			if err := runCase(tok, c); err != nil {
				if failed < 3 {
					r.Fail("%s: case %d (%s %q): %v", l.name, i+1, c.Kind, c.Text, err)
				}
				failed++
			}
		}
		if failed > 0 {
			r.Fail("%s: %d of %d cases failed", l.name, failed, len(cases))
		} else {
			r.Pass("%s: %d cases", l.name, len(cases))
		}
	}
}

func readCases(path string) ([]tokCase, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var cases []tokCase
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	line := 0
	for sc.Scan() {
		line++
		if len(sc.Bytes()) == 0 {
			continue
		}
		var c tokCase
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		cases = append(cases, c)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(cases) == 0 {
		return nil, fmt.Errorf("%s: no cases", path)
	}
	return cases, nil
}

func eq[T comparable](what string, got, want []T) error {
	if !slices.Equal(got, want) {
		return fmt.Errorf("%s %v, want %v", what, got, want)
	}
	return nil
}

func runCase(tok *tokenizer.Tokenizer, c tokCase) error {
	add := c.AddSpecialTokens == nil || *c.AddSpecialTokens
	switch c.Kind {
	case "single", "pair":
		var enc *tokenizer.Encoding
		var err error
		pair := ""
		if c.Kind == "pair" {
			if c.TextPair == nil {
				return fmt.Errorf("pair case without text_pair")
			}
			pair = *c.TextPair
			enc, err = tok.EncodePair(c.Text, pair, add)
		} else {
			enc, err = tok.Encode(c.Text, add)
		}
		if err != nil {
			return err
		}
		var ids, types, mask []int
		for _, x := range []struct {
			raw json.RawMessage
			dst *[]int
		}{{c.IDs, &ids}, {c.TypeIDs, &types}, {c.AttentionMask, &mask}} {
			if err := json.Unmarshal(x.raw, x.dst); err != nil {
				return fmt.Errorf("bad case: %w", err)
			}
		}
		if err := eq("ids", enc.IDs, ids); err != nil {
			return err
		}
		if err := eq("tokens", enc.Tokens, c.Tokens); err != nil {
			return err
		}
		var offs [][2]int
		for _, o := range enc.CharOffsets(c.Text, pair) {
			offs = append(offs, [2]int{o.Start, o.End})
		}
		if err := eq("offsets", offs, c.Offsets); err != nil {
			return err
		}
		if err := eq("type ids", enc.TypeIDs, types); err != nil {
			return err
		}
		if err := eq("attention mask", enc.AttentionMask, mask); err != nil {
			return err
		}
		if err := eq("special tokens mask", enc.SpecialTokensMask, c.SpecialTokensMask); err != nil {
			return err
		}
		if c.WordIDs != nil {
			want := make([]int, len(c.WordIDs))
			for i, w := range c.WordIDs {
				want[i] = -1
				if w != nil {
					want[i] = *w
				}
			}
			if err := eq("word ids", enc.WordIDs, want); err != nil {
				return err
			}
		}
		for _, d := range []struct {
			want *string
			skip bool
		}{{c.Decoded, true}, {c.DecodedWith, false}} {
			if d.want == nil {
				continue
			}
			got, err := tok.Decode(ids, d.skip)
			if err != nil {
				return fmt.Errorf("decode: %w", err)
			}
			if got != *d.want {
				return fmt.Errorf("decode(skip special %v) = %q, want %q", d.skip, got, *d.want)
			}
		}
		return nil
	case "batch":
		var ids, types, mask [][]int
		for _, x := range []struct {
			raw json.RawMessage
			dst *[][]int
		}{{c.IDs, &ids}, {c.TypeIDs, &types}, {c.AttentionMask, &mask}} {
			if err := json.Unmarshal(x.raw, x.dst); err != nil {
				return fmt.Errorf("bad case: %w", err)
			}
		}
		t := tok
		if c.TruncationMaxLen > 0 {
			t = t.WithTruncation(&tokenizer.TruncationParams{MaxLength: c.TruncationMaxLen, Strategy: tokenizer.TruncateLongestFirst})
		}
		if c.Padding != "" {
			if c.Padding != "longest" {
				return fmt.Errorf("unsupported: padding %q", c.Padding)
			}
			padID, ok := tok.TokenToID(c.PadToken)
			if !ok {
				return fmt.Errorf("pad token %q is not in the vocabulary", c.PadToken)
			}
			t = t.WithPadding(&tokenizer.PaddingParams{Strategy: tokenizer.PadLongest, Direction: tokenizer.Right, PadID: padID, PadToken: c.PadToken})
		}
		encs, err := t.EncodeBatch(context.Background(), c.Texts, add)
		if err != nil {
			return err
		}
		if len(encs) != len(ids) {
			return fmt.Errorf("%d encodings, want %d", len(encs), len(ids))
		}
		for i, enc := range encs {
			if err := eq(fmt.Sprintf("text %d ids", i), enc.IDs, ids[i]); err != nil {
				return err
			}
			if err := eq(fmt.Sprintf("text %d type ids", i), enc.TypeIDs, types[i]); err != nil {
				return err
			}
			if err := eq(fmt.Sprintf("text %d attention mask", i), enc.AttentionMask, mask[i]); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("unsupported: case kind %q", c.Kind)
}
