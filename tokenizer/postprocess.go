package tokenizer

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// postProcessor adds special tokens to encoded sequences.
type postProcessor interface {
	// addedTokens is how many tokens process adds with special tokens on.
	addedTokens(pair bool) int
	// process returns the encodings to merge, in order.
	process(encs []*Encoding, addSpecial bool) []*Encoding
}

// specialEnc builds an encoding holding special tokens.
func specialEnc(ids []int, toks []string, typeID int) *Encoding {
	e := newEncoding(len(ids))
	for i, id := range ids {
		e.push(id, toks[i], Offset{}, typeID, 1, -1, -1)
	}
	return e
}

// templatePiece is one element of a TemplateProcessing template.
type templatePiece struct {
	seq     int    // 0 for $A, 1 for $B, -1 for a special token
	special string // special token name
	typeID  int
}

type templateSpecial struct {
	ids  []int
	toks []string
}

type templateProc struct {
	single, pair []templatePiece
	specials     map[string]templateSpecial
}

func (t *templateProc) addedTokens(pair bool) int {
	tpl := t.single
	if pair {
		tpl = t.pair
	}
	n := 0
	for _, p := range tpl {
		if p.seq < 0 {
			n += len(t.specials[p.special].ids)
		}
	}
	return n
}

func (t *templateProc) process(encs []*Encoding, addSpecial bool) []*Encoding {
	tpl := t.single
	if len(encs) == 2 {
		tpl = t.pair
	}
	var out []*Encoding
	var used [2]bool
	for _, p := range tpl {
		if p.seq >= 0 {
			if p.seq >= len(encs) {
				continue
			}
			e := encs[p.seq]
			if used[p.seq] {
				e = e.clone() // a template naming a sequence twice
			}
			used[p.seq] = true
			e.setTypeIDs(p.typeID)
			out = append(out, e)
			continue
		}
		if addSpecial {
			sp := t.specials[p.special]
			out = append(out, specialEnc(sp.ids, sp.toks, p.typeID))
		}
	}
	return out
}

// bertProc is BertProcessing: [CLS] A [SEP] (B [SEP]).
type bertProc struct {
	cls, sep     string
	clsID, sepID int
}

func (b *bertProc) addedTokens(pair bool) int {
	if pair {
		return 3
	}
	return 2
}

func (b *bertProc) process(encs []*Encoding, addSpecial bool) []*Encoding {
	if !addSpecial {
		return encs
	}
	out := []*Encoding{specialEnc([]int{b.clsID}, []string{b.cls}, 0)}
	for i, e := range encs {
		out = append(out, e, specialEnc([]int{b.sepID}, []string{b.sep}, i))
	}
	return out
}

// robertaProc is RobertaProcessing: <s> A </s> (</s> B </s>), all type ids
// 0, with optional trimming of offsets.
type robertaProc struct {
	cls, sep       string
	clsID, sepID   int
	trimOffsets    bool
	addPrefixSpace bool
}

func (r *robertaProc) addedTokens(pair bool) int {
	if pair {
		return 4
	}
	return 2
}

func (r *robertaProc) process(encs []*Encoding, addSpecial bool) []*Encoding {
	if r.trimOffsets {
		for _, e := range encs {
			trimByteLevelOffsets(e, r.addPrefixSpace)
		}
	}
	if !addSpecial {
		return encs
	}
	var out []*Encoding
	for i, e := range encs {
		wrap := func(x *Encoding) *Encoding {
			first := r.clsID
			firstTok := r.cls
			if i > 0 {
				first, firstTok = r.sepID, r.sep
			}
			w := specialEnc([]int{first}, []string{firstTok}, 0)
			x.setTypeIDs(0)
			w.appendTokens(x)
			w.appendTokens(specialEnc([]int{r.sepID}, []string{r.sep}, 0))
			return w
		}
		w := wrap(e)
		for _, o := range e.Overflowing {
			w.Overflowing = append(w.Overflowing, wrap(o))
		}
		out = append(out, w)
	}
	return out
}

// byteLevelProc is the ByteLevel post-processor: only offset trimming.
type byteLevelProc struct {
	trimOffsets    bool
	addPrefixSpace bool
}

func (byteLevelProc) addedTokens(bool) int { return 0 }

func (b byteLevelProc) process(encs []*Encoding, _ bool) []*Encoding {
	if b.trimOffsets {
		for _, e := range encs {
			trimByteLevelOffsets(e, b.addPrefixSpace)
		}
	}
	return encs
}

// postSequence runs post-processors in turn.
type postSequence []postProcessor

func (s postSequence) addedTokens(pair bool) int {
	n := 0
	for _, p := range s {
		n += p.addedTokens(pair)
	}
	return n
}

func (s postSequence) process(encs []*Encoding, addSpecial bool) []*Encoding {
	for _, p := range s {
		encs = p.process(encs, addSpecial)
	}
	return encs
}

// trimByteLevelOffsets moves offsets past the leading and trailing spaces
// ('Ġ' or white space) a byte-level token carries, as Hugging Face's
// process_offsets does. Hugging Face counts characters and applies the
// counts to character offsets; here offsets are bytes, so each space counts
// its bytes in the text ('Ġ' stands for one byte).
func trimByteLevelOffsets(e *Encoding, addPrefixSpace bool) {
	spaceBytes := func(r rune) int {
		if r == 'Ġ' {
			return 1
		}
		if unicode.IsSpace(r) {
			return utf8.RuneLen(r)
		}
		return 0
	}
	for i, tk := range e.Tokens {
		lead, leadN := 0, 0
		for _, r := range tk {
			n := spaceBytes(r)
			if n == 0 {
				break
			}
			lead += n
			leadN++
		}
		trail := 0
		for j := len(tk); j > 0; {
			r, w := utf8.DecodeLastRuneInString(tk[:j])
			n := spaceBytes(r)
			if n == 0 {
				break
			}
			trail += n
			j -= w
		}
		if lead == 0 && trail == 0 {
			continue
		}
		o := &e.Offsets[i]
		if lead > 0 {
			first := i == 0 || o.Start == 0
			if first && addPrefixSpace && leadN == 1 {
				lead = 0
			}
			o.Start = min(o.Start+lead, o.End)
		}
		if trail > 0 && o.End >= trail {
			o.End = max(o.End-trail, o.Start)
		}
	}
	for _, o := range e.Overflowing {
		trimByteLevelOffsets(o, addPrefixSpace)
	}
}

// truncateEncoding cuts e to maxLen tokens, moving the rest into
// overflowing parts of maxLen tokens that overlap by stride.
func truncateEncoding(e *Encoding, maxLen, stride int, left bool) error {
	n := len(e.IDs)
	if maxLen >= n {
		return nil
	}
	if maxLen == 0 {
		o := *e
		*e = *newEncoding(0)
		e.Overflowing = []*Encoding{&o}
		return nil
	}
	if stride >= maxLen {
		return fmt.Errorf("tokenizer: truncation stride %d must be smaller than the length %d left for the sequence", stride, maxLen)
	}
	step := maxLen - stride
	var parts [][2]int
	if !left {
		for start := 0; start < n; start += step {
			stop := min(start+maxLen, n)
			parts = append(parts, [2]int{start, stop})
			if stop == n {
				break
			}
		}
	} else {
		for stop := n; stop > 0; stop -= step {
			start := max(stop-maxLen, 0)
			parts = append(parts, [2]int{start, stop})
			if start == 0 {
				break
			}
		}
	}
	main := e.slice(parts[0][0], parts[0][1])
	for _, p := range parts[1:] {
		main.Overflowing = append(main.Overflowing, e.slice(p[0], p[1]))
	}
	*e = *main
	return nil
}

// truncateEncodings applies a truncation strategy to a sequence and its
// optional pair.
func truncateEncodings(a, b *Encoding, p *TruncationParams) error {
	left := p.Direction == Left
	if p.MaxLength == 0 {
		if err := truncateEncoding(a, 0, p.Stride, left); err != nil {
			return err
		}
		if b != nil {
			return truncateEncoding(b, 0, p.Stride, left)
		}
		return nil
	}
	total := len(a.IDs)
	if b != nil {
		total += len(b.IDs)
	}
	if total <= p.MaxLength {
		return nil
	}
	toRemove := total - p.MaxLength
	switch p.Strategy {
	case TruncateLongestFirst, "":
		if b == nil {
			return truncateEncoding(a, total-toRemove, p.Stride, left)
		}
		n1, n2 := len(a.IDs), len(b.IDs)
		swap := n1 > n2
		if swap {
			n1, n2 = n2, n1
		}
		if n1 > p.MaxLength {
			n2 = n1
		} else {
			n2 = max(n1, p.MaxLength-n1)
		}
		if n1+n2 > p.MaxLength {
			n1 = p.MaxLength / 2
			n2 = n1 + p.MaxLength%2
		}
		if swap {
			n1, n2 = n2, n1
		}
		if err := truncateEncoding(a, n1, p.Stride, left); err != nil {
			return err
		}
		return truncateEncoding(b, n2, p.Stride, left)
	case TruncateOnlyFirst, TruncateOnlySecond:
		target := a
		if p.Strategy == TruncateOnlySecond {
			if b == nil {
				return fmt.Errorf("tokenizer: truncation strategy only_second needs a pair of sequences")
			}
			target = b
		}
		n := len(target.IDs)
		if n <= toRemove {
			return fmt.Errorf("tokenizer: truncation: the sequence to truncate has %d tokens, fewer than the %d that must go", n, toRemove)
		}
		return truncateEncoding(target, n-toRemove, p.Stride, left)
	}
	return fmt.Errorf("%w: truncation strategy %q", ErrUnsupported, p.Strategy)
}

// padEncodings pads every encoding (and its overflowing parts) to the
// batch's target length.
func padEncodings(encs []*Encoding, p *PaddingParams) error {
	// WithPadding takes any values: bound them here, before allocating.
	if p.Length < 0 || p.Length > MaxSequenceLength || p.MultipleOf < 0 || p.MultipleOf > MaxSequenceLength {
		return fmt.Errorf("tokenizer: padding length %d / multiple of %d outside 0..%d", p.Length, p.MultipleOf, MaxSequenceLength)
	}
	target := 0
	switch p.Strategy {
	case PadLongest, "":
		for _, e := range encs {
			target = max(target, len(e.IDs))
		}
	case PadFixed:
		target = p.Length
	default:
		return fmt.Errorf("%w: padding strategy %q", ErrUnsupported, p.Strategy)
	}
	if p.MultipleOf > 0 && target%p.MultipleOf != 0 {
		target += p.MultipleOf - target%p.MultipleOf
	}
	for _, e := range encs {
		padEncoding(e, target, p)
	}
	return nil
}

func padEncoding(e *Encoding, target int, p *PaddingParams) {
	for _, o := range e.Overflowing {
		padEncoding(o, target, p)
	}
	n := target - len(e.IDs)
	if n <= 0 {
		return
	}
	pad := newEncoding(n)
	for range n {
		pad.push(p.PadID, p.PadToken, Offset{}, p.PadTypeID, 1, -1, -1)
		pad.AttentionMask[len(pad.AttentionMask)-1] = 0
	}
	if p.Direction == Left {
		over := e.Overflowing
		pad.appendTokens(e)
		*e = *pad
		e.Overflowing = over
		return
	}
	e.appendTokens(pad)
}
