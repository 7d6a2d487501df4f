package tokenizer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"unicode/utf8"
)

// unkPenalty is how much less than the lowest piece score an unknown
// character scores, as in SentencePiece and Hugging Face.
const unkPenalty = 10.0

// unigram is Hugging Face's Unigram model: the segmentation of a word is
// the one whose pieces' scores (log probabilities) have the largest sum,
// found by Viterbi over a double-array trie of the pieces.
type unigram struct {
	pieces   []string // id -> piece, duplicates included
	scores   []float64
	vocabMap map[string]int // piece -> id (the last id of a duplicate)
	trie     daTrie
	unkID    int // -1 when the model has no unknown piece
	unkScore float64
	// byteFallback spells unknown characters as <0xXX> pieces.
	byteFallback bool
	byteIDs      [256]int32 // id of <0xXX>, -1 when absent
	cache        *bpeCache
}

// unigramEntry is one [piece, score] pair of model.vocab.
type unigramEntry struct {
	piece string
	score float64
}

func (e *unigramEntry) UnmarshalJSON(b []byte) error {
	// Parsed by hand: a real vocabulary has a quarter of a million pairs.
	bad := func() error { return fmt.Errorf("expected [piece, score], got %.60s", b) }
	b = bytes.TrimSpace(b)
	if len(b) < 2 || b[0] != '[' || b[len(b)-1] != ']' {
		return bad()
	}
	in := bytes.TrimSpace(b[1 : len(b)-1])
	if len(in) == 0 || in[0] != '"' {
		return bad()
	}
	// The closing quote is the first one not escaped.
	end, esc := -1, false
	for i := 1; i < len(in); i++ {
		switch c := in[i]; {
		case c == '\\':
			esc = true
			i++
		case c == '"':
			end = i
		}
		if end >= 0 {
			break
		}
	}
	if end < 0 {
		return bad()
	}
	if esc || !utf8.Valid(in[1:end]) {
		if err := json.Unmarshal(in[:end+1], &e.piece); err != nil {
			return fmt.Errorf("piece %.40s: %w", in[:end+1], err)
		}
	} else {
		e.piece = string(in[1:end])
	}
	rest := bytes.TrimSpace(in[end+1:])
	if len(rest) == 0 || rest[0] != ',' {
		return bad()
	}
	num := bytes.TrimSpace(rest[1:])
	s, err := strconv.ParseFloat(string(num), 64)
	if err != nil || len(num) == 0 || num[0] == '+' || num[0] == '.' {
		return fmt.Errorf("score of piece %q: %.30s is not a JSON number", e.piece, num)
	}
	e.score = s
	return nil
}

// parseUnigram reads the fields of a Unigram model.
func parseUnigram(r rawJSON) (*unigram, error) {
	var m struct {
		Vocab        []unigramEntry `json:"vocab"`
		UnkID        *int           `json:"unk_id"`
		ByteFallback bool           `json:"byte_fallback"`
	}
	if err := json.Unmarshal(r, &m); err != nil {
		return nil, err
	}
	unk := -1
	if m.UnkID != nil {
		unk = *m.UnkID
	}
	return newUnigram(m.Vocab, unk, m.ByteFallback)
}

// newUnigram builds the model from its pieces in id order; unkID is -1
// when there is none.
func newUnigram(vocab []unigramEntry, unkID int, byteFallback bool) (*unigram, error) {
	if len(vocab) == 0 {
		return nil, errors.New("Unigram vocabulary is empty")
	}
	if len(vocab) > maxVocabID {
		return nil, fmt.Errorf("Unigram vocabulary has %d pieces, more than %d", len(vocab), maxVocabID)
	}
	if unkID < -1 || unkID >= len(vocab) {
		return nil, fmt.Errorf("Unigram unk_id %d is outside the vocabulary of %d pieces", unkID, len(vocab))
	}
	u := &unigram{
		pieces:       make([]string, len(vocab)),
		scores:       make([]float64, len(vocab)),
		vocabMap:     make(map[string]int, len(vocab)),
		unkID:        unkID,
		byteFallback: byteFallback,
		cache:        newBPECache(),
	}
	minScore := math.Inf(1)
	for i, e := range vocab {
		if math.IsNaN(e.score) || math.IsInf(e.score, 0) {
			return nil, fmt.Errorf("Unigram piece %d (%q) has score %v", i, e.piece, e.score)
		}
		u.pieces[i] = e.piece
		u.scores[i] = e.score
		u.vocabMap[e.piece] = i
		minScore = min(minScore, e.score)
	}
	u.unkScore = minScore - unkPenalty
	keys := make([]string, 0, len(u.vocabMap))
	for s := range u.vocabMap {
		if s != "" {
			keys = append(keys, s)
		}
	}
	sort.Strings(keys)
	vals := make([]int32, len(keys))
	for i, s := range keys {
		vals[i] = int32(u.vocabMap[s])
	}
	u.trie = buildDATrie(keys, vals)
	for b := range 256 {
		u.byteIDs[b] = -1
		if id, ok := u.vocabMap[fmt.Sprintf("<0x%02X>", b)]; ok {
			u.byteIDs[b] = int32(id)
		}
	}
	return u, nil
}

func (u *unigram) vocab() map[string]int { return u.vocabMap }

// lattice is one position of the Viterbi table: the best path ending at
// the position, where its last piece starts, and that piece's id.
type lattice struct {
	score float64
	start int32 // -1: no path reaches this position yet
	id    int32
}

// unigramStack is the word length (bytes) up to which the Viterbi table
// lives on the stack.
const unigramStack = 64

func (u *unigram) tokenize(p *piece, out []tok) ([]tok, error) {
	if p.byteLevel {
		*p = toByteLevel(*p)
	}
	s := p.s
	if s == "" {
		return out, nil
	}
	cacheable := len(s) <= unigramStack
	if cacheable {
		if ent, ok := u.cache.get(s); ok {
			for _, e := range ent {
				out = append(out, tok{int(e.id), int(e.a), int(e.b)})
			}
			return out, nil
		}
	}
	var stack [unigramStack + 1]lattice
	var best []lattice
	if len(s) <= unigramStack {
		best = stack[:len(s)+1]
	} else {
		best = make([]lattice, len(s)+1)
	}
	if err := u.viterbi(s, best); err != nil {
		return out, err
	}
	mark := len(out)
	out = u.backtrack(s, best, out)
	if cacheable {
		ent := make([]cacheTok, len(out)-mark)
		for i, t := range out[mark:] {
			ent[i] = cacheTok{int32(t.id), int32(t.a), int32(t.b)}
		}
		u.cache.put(s, ent)
	}
	return out, nil
}

// viterbi fills best[i] with the best segmentation of s[:i], visiting
// candidates in Hugging Face's order (start position, then piece length)
// and keeping the first of equal scores.
func (u *unigram) viterbi(s string, best []lattice) error {
	for i := range best {
		best[i] = lattice{start: -1}
	}
	best[0].start = 0
	nodes := u.trie.nodes
	for start := 0; start < len(s); {
		here := best[start].score
		c := s[start]
		mblen := 1
		if c >= utf8.RuneSelf {
			_, mblen = utf8.DecodeRuneInString(s[start:])
		}
		single := false
		node := int32(0)
		for k := start; k < len(s); k++ {
			t := nodes[node].base + int32(s[k])
			if uint32(t) >= uint32(len(nodes)) || nodes[t].check != node {
				break
			}
			node = t
			id := nodes[t].value
			if id < 0 {
				continue
			}
			end := k + 1
			cand := u.scores[id] + here
			if b := &best[end]; b.start < 0 || cand > b.score {
				*b = lattice{score: cand, start: int32(start), id: id}
			}
			if end-start == mblen {
				single = true
			}
		}
		if !single {
			cand := u.unkScore + here
			if b := &best[start+mblen]; b.start < 0 || cand > b.score {
				if u.unkID < 0 {
					r, _ := utf8.DecodeRuneInString(s[start:])
					return fmt.Errorf("tokenizer: Unigram: %q has no piece and the model has no unk_id", r)
				}
				*b = lattice{score: cand, start: int32(start), id: int32(u.unkID)}
			}
		}
		start += mblen
	}
	return nil
}

// backtrack appends the best path's tokens in order. Consecutive unknown
// pieces fuse into one token, which is then looked up as a whole, spelled
// as bytes (byte_fallback) or made the unknown token, as Hugging Face does.
func (u *unigram) backtrack(s string, best []lattice, out []tok) []tok {
	mark := len(out)
	unkEnd := -1 // end of the unknown run being fused, -1 when none
	unk := int32(u.unkID)
	for end := len(s); end > 0; {
		b := best[end]
		start := int(b.start)
		if b.id == unk {
			if unkEnd < 0 {
				unkEnd = end
			}
		} else {
			if unkEnd >= 0 {
				out = u.unknown(s, end, unkEnd, out)
				unkEnd = -1
			}
			out = append(out, tok{int(b.id), start, end})
		}
		end = start
	}
	if unkEnd >= 0 {
		out = u.unknown(s, 0, unkEnd, out)
	}
	// The path was walked backwards; byte fallback runs were appended in
	// reverse too, so one reversal restores the order.
	r := out[mark:]
	for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
		r[i], r[j] = r[j], r[i]
	}
	return out
}

// unknown appends the tokens of the fused unknown run s[a:b] (in reverse
// order, see backtrack).
func (u *unigram) unknown(s string, a, b int, out []tok) []tok {
	if id, ok := u.vocabMap[s[a:b]]; ok {
		return append(out, tok{id, a, b})
	}
	if u.byteFallback {
		all := true
		for i := a; i < b; i++ {
			if u.byteIDs[s[i]] < 0 {
				all = false
				break
			}
		}
		if all {
			for i := b - 1; i >= a; i-- {
				// Every byte token covers the whole run.
				out = append(out, tok{int(u.byteIDs[s[i]]), a, b})
			}
			return out
		}
	}
	return append(out, tok{u.unkID, a, b})
}

// ---- double-array trie ----

// daNode is one slot of a double-array trie: the child of node s for byte
// c is slot base[s]+c when that slot's check is s.
type daNode struct {
	base  int32
	check int32 // parent slot, -1 when free
	value int32 // id of the key ending here, -1 when none
}

// daTrie is a double-array trie over byte strings.
type daTrie struct {
	nodes []daNode
}

// daBuilder places nodes in the array, keeping a free list of slots.
type daBuilder struct {
	nodes     []daNode
	nextFree  []int32 // free list, circular, over free slots
	prevFree  []int32
	inList    []bool  // slot is on the free list
	fails     []uint8 // times a free slot failed as a first child
	firstFree int32   // -1 when none
	nFree     int     // slots on the free list
	keys      []string
	vals      []int32
}

// buildDATrie builds the trie of sorted, distinct, non-empty keys.
func buildDATrie(keys []string, vals []int32) daTrie {
	b := &daBuilder{keys: keys, vals: vals, firstFree: -1}
	// A node per distinct key prefix at most: reserve about that much.
	total := 512
	for _, k := range keys {
		total += len(k)
	}
	total = min(total, 1<<26)
	b.nodes = make([]daNode, 0, total)
	b.nextFree = make([]int32, 0, total)
	b.prevFree = make([]int32, 0, total)
	b.inList = make([]bool, 0, total)
	b.fails = make([]uint8, 0, total)
	b.grow(256 + 1)
	b.take(0)
	b.nodes[0] = daNode{check: -1, value: -1}
	b.place(0, 0, len(keys), 0)
	// Trim unused tail slots.
	n := len(b.nodes)
	for n > 1 && b.nodes[n-1].check == -1 && b.nodes[n-1].value == -1 && n-1 != 0 {
		n--
	}
	nodes := make([]daNode, n)
	copy(nodes, b.nodes[:n])
	return daTrie{nodes: nodes}
}

func (b *daBuilder) grow(n int) {
	old := len(b.nodes)
	if n <= old {
		return
	}
	for i := old; i < n; i++ {
		b.nodes = append(b.nodes, daNode{base: 0, check: -1, value: -1})
		b.nextFree = append(b.nextFree, 0)
		b.prevFree = append(b.prevFree, 0)
		b.inList = append(b.inList, false)
		b.fails = append(b.fails, 0)
		b.free(int32(i))
	}
}

// free adds slot i at the end of the free list.
func (b *daBuilder) free(i int32) {
	b.inList[i] = true
	b.nFree++
	if b.firstFree < 0 {
		b.firstFree = i
		b.nextFree[i], b.prevFree[i] = i, i
		return
	}
	last := b.prevFree[b.firstFree]
	b.nextFree[last] = i
	b.prevFree[i] = last
	b.nextFree[i] = b.firstFree
	b.prevFree[b.firstFree] = i
}

// take removes slot i from the free list (a no-op for a slot dropped
// from it, see findBase).
func (b *daBuilder) take(i int32) {
	if !b.inList[i] {
		return
	}
	b.inList[i] = false
	b.nFree--
	n, p := b.nextFree[i], b.prevFree[i]
	if n == i {
		b.firstFree = -1
		return
	}
	b.nextFree[p] = n
	b.prevFree[n] = p
	if b.firstFree == i {
		b.firstFree = n
	}
}

// place fills the children of slot s, which holds keys[lo:hi] (all
// sharing their first depth bytes).
func (b *daBuilder) place(s int32, lo, hi, depth int) {
	if lo < hi && len(b.keys[lo]) == depth {
		b.nodes[s].value = b.vals[lo]
		lo++
	}
	if lo >= hi {
		return
	}
	var labels [256]byte
	var starts [257]int
	n := 0
	for i := lo; i < hi; {
		c := b.keys[i][depth]
		j := i + 1
		for j < hi && b.keys[j][depth] == c {
			j++
		}
		labels[n], starts[n] = c, i
		n++
		i = j
	}
	starts[n] = hi
	base := b.findBase(labels[:n])
	b.nodes[s].base = base
	for k := 0; k < n; k++ {
		t := base + int32(labels[k])
		b.take(t)
		b.nodes[t] = daNode{check: s, value: -1}
	}
	for k := 0; k < n; k++ {
		b.place(base+int32(labels[k]), starts[k], starts[k+1], depth+1)
	}
}

// findBase returns a base >= 1 whose slots for every label are free.
func (b *daBuilder) findBase(labels []byte) int32 {
	first := int32(labels[0])
	f := b.firstFree
	for range b.nFree {
		base := f - first
		if base >= 1 && b.fits(base, labels) {
			return base
		}
		next := b.nextFree[f]
		// A slot that keeps failing stays free but stops being tried
		// first: this keeps building near linear on large vocabularies.
		if b.fails[f]++; b.fails[f] >= 16 {
			b.take(f)
		}
		f = next
	}
	// No room: append past the end.
	base := max(int32(len(b.nodes))-first, 1)
	b.grow(int(base) + 256)
	return base
}

func (b *daBuilder) fits(base int32, labels []byte) bool {
	for _, c := range labels {
		t := int(base) + int(c)
		if t >= len(b.nodes) {
			b.grow(t + 256)
		}
		if b.nodes[t].check != -1 || t == 0 {
			return false
		}
	}
	return true
}
