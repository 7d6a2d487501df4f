package tokenizer

import "unicode/utf8"

// Offset is a half-open byte range [Start, End) into the original text of
// the sequence a token came from. Special tokens and padding have (0, 0).
type Offset struct{ Start, End int }

// Encoding is the result of encoding one text or one pair of texts.
// All slices have the same length (one entry per token).
type Encoding struct {
	IDs               []int
	Tokens            []string
	Offsets           []Offset
	TypeIDs           []int
	AttentionMask     []int
	SpecialTokensMask []int
	// WordIDs is the index of the pre-tokenized word a token came from,
	// -1 where none (special tokens, padding).
	WordIDs []int
	// SequenceIDs is 0 for tokens of the first text, 1 for the pair, -1
	// for special tokens and padding.
	SequenceIDs []int
	// Overflowing holds the parts cut off by truncation, each post-processed
	// like the main encoding.
	Overflowing []*Encoding
}

// Len returns the number of tokens.
func (e *Encoding) Len() int { return len(e.IDs) }

func newEncoding(capacity int) *Encoding {
	// One block for the six int fields: fewer allocations per encoding.
	n := capacity
	ints := make([]int, 6*n)
	return &Encoding{
		IDs:               ints[0*n : 0*n : 1*n],
		TypeIDs:           ints[1*n : 1*n : 2*n],
		AttentionMask:     ints[2*n : 2*n : 3*n],
		SpecialTokensMask: ints[3*n : 3*n : 4*n],
		WordIDs:           ints[4*n : 4*n : 5*n],
		SequenceIDs:       ints[5*n : 5*n : 6*n],
		Tokens:            make([]string, 0, n),
		Offsets:           make([]Offset, 0, n),
	}
}

// push appends one token.
func (e *Encoding) push(id int, tok string, off Offset, typeID, special, word, seq int) {
	e.IDs = append(e.IDs, id)
	e.Tokens = append(e.Tokens, tok)
	e.Offsets = append(e.Offsets, off)
	e.TypeIDs = append(e.TypeIDs, typeID)
	e.AttentionMask = append(e.AttentionMask, 1)
	e.SpecialTokensMask = append(e.SpecialTokensMask, special)
	e.WordIDs = append(e.WordIDs, word)
	e.SequenceIDs = append(e.SequenceIDs, seq)
}

// clone returns a deep copy.
func (e *Encoding) clone() *Encoding {
	c := &Encoding{
		IDs:               cp(e.IDs),
		Tokens:            cp(e.Tokens),
		Offsets:           cp(e.Offsets),
		TypeIDs:           cp(e.TypeIDs),
		AttentionMask:     cp(e.AttentionMask),
		SpecialTokensMask: cp(e.SpecialTokensMask),
		WordIDs:           cp(e.WordIDs),
		SequenceIDs:       cp(e.SequenceIDs),
	}
	for _, o := range e.Overflowing {
		c.Overflowing = append(c.Overflowing, o.clone())
	}
	return c
}

// slice returns a copy of tokens [a, b) without overflowing parts.
func (e *Encoding) slice(a, b int) *Encoding {
	return &Encoding{
		IDs:               cp(e.IDs[a:b]),
		Tokens:            cp(e.Tokens[a:b]),
		Offsets:           cp(e.Offsets[a:b]),
		TypeIDs:           cp(e.TypeIDs[a:b]),
		AttentionMask:     cp(e.AttentionMask[a:b]),
		SpecialTokensMask: cp(e.SpecialTokensMask[a:b]),
		WordIDs:           cp(e.WordIDs[a:b]),
		SequenceIDs:       cp(e.SequenceIDs[a:b]),
	}
}

// appendTokens appends the tokens of o (not its overflowing parts).
func (e *Encoding) appendTokens(o *Encoding) {
	e.IDs = append(e.IDs, o.IDs...)
	e.Tokens = append(e.Tokens, o.Tokens...)
	e.Offsets = append(e.Offsets, o.Offsets...)
	e.TypeIDs = append(e.TypeIDs, o.TypeIDs...)
	e.AttentionMask = append(e.AttentionMask, o.AttentionMask...)
	e.SpecialTokensMask = append(e.SpecialTokensMask, o.SpecialTokensMask...)
	e.WordIDs = append(e.WordIDs, o.WordIDs...)
	e.SequenceIDs = append(e.SequenceIDs, o.SequenceIDs...)
}

// mergeWith appends o to e, combining overflowing parts the way Hugging
// Face's Encoding::merge_with does (every overflow of one side with the
// other side and its overflows).
func (e *Encoding) mergeWith(o *Encoding) {
	var over []*Encoding
	for _, so := range e.Overflowing {
		n := so.clone()
		n.mergeWith(o.clone())
		over = append(over, n)
		for _, oo := range o.Overflowing {
			n := so.clone()
			n.mergeWith(oo.clone())
			over = append(over, n)
		}
	}
	for _, oo := range o.Overflowing {
		n := e.clone()
		n.Overflowing = nil
		n.mergeWith(oo.clone())
		over = append(over, n)
	}
	e.appendTokens(o)
	e.Overflowing = over
}

// mergeEncodings folds encs into one, left to right.
func mergeEncodings(encs []*Encoding) *Encoding {
	total := 0
	over := false
	for _, x := range encs {
		total += len(x.IDs)
		over = over || len(x.Overflowing) > 0
	}
	if !over {
		out := newEncoding(total)
		for _, x := range encs {
			out.appendTokens(x)
		}
		return out
	}
	out := newEncoding(0)
	for _, x := range encs {
		out.mergeWith(x)
	}
	return out
}

func (e *Encoding) setSequenceID(id int) {
	for i := range e.SequenceIDs {
		e.SequenceIDs[i] = id
	}
}

func (e *Encoding) setTypeIDs(id int) {
	for i := range e.TypeIDs {
		e.TypeIDs[i] = id
	}
}

// CharOffsets returns the offsets converted to code points (Unicode scalar
// values), each into its own sequence's text: text for sequence 0, pair for
// sequence 1. Special tokens and padding keep (0, 0).
func (e *Encoding) CharOffsets(text, pair string) []Offset {
	out := make([]Offset, len(e.Offsets))
	var m0, m1 []int
	for i, o := range e.Offsets {
		var m []int
		switch e.SequenceIDs[i] {
		case 0:
			if m0 == nil {
				m0 = byteToChar(text)
			}
			m = m0
		case 1:
			if m1 == nil {
				m1 = byteToChar(pair)
			}
			m = m1
		default:
			out[i] = o
			continue
		}
		out[i] = Offset{clampIndex(m, o.Start), clampIndex(m, o.End)}
	}
	return out
}

func clampIndex(m []int, i int) int {
	if i < 0 {
		return 0
	}
	if i >= len(m) {
		return m[len(m)-1]
	}
	return m[i]
}

// byteToChar maps every byte index (and the end) of s to the index of the
// code point holding it.
func byteToChar(s string) []int {
	m := make([]int, len(s)+1)
	n := 0
	for i := 0; i < len(s); {
		_, w := utf8.DecodeRuneInString(s[i:])
		for k := 0; k < w; k++ {
			m[i+k] = n
		}
		i += w
		n++
	}
	m[len(s)] = n
	return m
}

// cp copies a slice, never returning nil (empty encodings keep empty,
// non-nil slices).
func cp[T any](x []T) []T { return append(make([]T, 0, len(x)), x...) }
