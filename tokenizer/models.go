package tokenizer

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"
)

// tok is one model token inside a piece: its id and the normalized byte
// range [a, b) of the piece it covers.
type tok struct {
	id   int
	a, b int
}

// model turns one pre-tokenized word into tokens.
type model interface {
	tokenize(p *piece, out []tok) ([]tok, error)
	vocab() map[string]int
}

// idTable returns id->token for a vocabulary (gaps are "").
func idTable(v map[string]int) []string {
	n := 0
	for _, id := range v {
		if id+1 > n {
			n = id + 1
		}
	}
	t := make([]string, n)
	for s, id := range v {
		t[id] = s
	}
	return t
}

// ---- WordPiece ----

type wordPiece struct {
	vocabMap  map[string]int
	cont      map[string]int // continuation pieces, keyed without prefix
	unk       string
	unkID     int
	prefix    string
	maxChars  int
	maxLen    int // longest key of vocabMap in bytes
	maxCont   int // longest key of cont in bytes
	hasPrefix bool
}

func newWordPiece(v map[string]int, unk, prefix string, maxChars int) *wordPiece {
	w := &wordPiece{vocabMap: v, unk: unk, prefix: prefix, maxChars: maxChars, unkID: -1}
	if id, ok := v[unk]; ok {
		w.unkID = id
	}
	w.cont = make(map[string]int)
	for s, id := range v {
		w.maxLen = max(w.maxLen, len(s))
		if len(s) >= len(prefix) && s[:len(prefix)] == prefix {
			k := s[len(prefix):]
			w.cont[k] = id
			w.maxCont = max(w.maxCont, len(k))
		}
	}
	return w
}

func (w *wordPiece) vocab() map[string]int { return w.vocabMap }

func (w *wordPiece) unkTok(n int, out []tok) ([]tok, error) {
	if w.unkID < 0 {
		return out, fmt.Errorf("tokenizer: WordPiece unknown token %q is not in the vocabulary", w.unk)
	}
	return append(out, tok{w.unkID, 0, n}), nil
}

func (w *wordPiece) tokenize(p *piece, out []tok) ([]tok, error) {
	if p.byteLevel {
		q := toByteLevel(*p)
		*p = q
	}
	s := p.s
	if w.maxChars > 0 && len(s) > w.maxChars && utf8.RuneCountInString(s) > w.maxChars {
		return w.unkTok(len(s), out)
	}
	mark := len(out)
	start := 0
	for start < len(s) {
		m, lim := w.vocabMap, w.maxLen
		if start > 0 {
			m, lim = w.cont, w.maxCont
		}
		end := min(len(s), start+lim)
		for end > start && end < len(s) && !utf8.RuneStart(s[end]) {
			end--
		}
		found := -1
		for end > start {
			if id, ok := m[s[start:end]]; ok {
				found = id
				break
			}
			end--
			for end > start && !utf8.RuneStart(s[end]) {
				end--
			}
		}
		if found < 0 {
			return w.unkTok(len(s), out[:mark])
		}
		out = append(out, tok{found, start, end})
		start = end
	}
	return out, nil
}

// ---- WordLevel ----

type wordLevel struct {
	vocabMap map[string]int
	unk      string
	unkID    int
}

func (w *wordLevel) vocab() map[string]int { return w.vocabMap }

func (w *wordLevel) tokenize(p *piece, out []tok) ([]tok, error) {
	if p.byteLevel {
		*p = toByteLevel(*p)
	}
	if id, ok := w.vocabMap[p.s]; ok {
		return append(out, tok{id, 0, len(p.s)}), nil
	}
	if w.unkID < 0 {
		return out, fmt.Errorf("tokenizer: WordLevel unknown token %q is not in the vocabulary", w.unk)
	}
	return append(out, tok{w.unkID, 0, len(p.s)}), nil
}

// ---- BPE ----

type mergeInfo struct{ rank, id int32 }

type bpe struct {
	vocabMap     map[string]int
	ids          []string
	merges       map[uint64]mergeInfo
	unkID        int
	prefix       string
	suffix       string
	fuseUnk      bool
	byteFallback bool
	ignoreMerges bool
	byteIDs      [256]int32   // id of each byte's byte-level character, -1 if absent
	cache        [2]*bpeCache // words of plain pieces, of byte-level pieces
}

func pairKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

// newBPE builds the model; merges are pairs of token strings, rank order.
func newBPE(v map[string]int, merges [][2]string, unk, prefix, suffix string, fuseUnk, byteFallback, ignoreMerges bool) (*bpe, error) {
	b := &bpe{vocabMap: v, ids: idTable(v), merges: make(map[uint64]mergeInfo, len(merges)), unkID: -1,
		prefix: prefix, suffix: suffix, fuseUnk: fuseUnk, byteFallback: byteFallback, ignoreMerges: ignoreMerges,
		cache: [2]*bpeCache{newBPECache(), newBPECache()}}
	if unk != "" {
		id, ok := v[unk]
		if !ok {
			return nil, fmt.Errorf("tokenizer: BPE unk_token %q is not in the vocabulary", unk)
		}
		b.unkID = id
	}
	for i, m := range merges {
		a, ok1 := v[m[0]]
		c, ok2 := v[m[1]]
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("tokenizer: BPE merge %d (%q %q) uses a token missing from the vocabulary", i, m[0], m[1])
		}
		merged := m[0] + m[1][min(len(prefix), len(m[1])):]
		if prefix == "" || len(m[1]) < len(prefix) || m[1][:len(prefix)] != prefix {
			merged = m[0] + m[1]
		}
		id, ok := v[merged]
		if !ok {
			return nil, fmt.Errorf("tokenizer: BPE merge %d (%q %q) makes %q, which is missing from the vocabulary", i, m[0], m[1], merged)
		}
		k := pairKey(int32(a), int32(c))
		if _, dup := b.merges[k]; !dup {
			b.merges[k] = mergeInfo{int32(i), int32(id)}
		}
	}
	for i := range 256 {
		b.byteIDs[i] = -1
		if id, ok := v[string(byteToRune[i])]; ok {
			b.byteIDs[i] = int32(id)
		}
	}
	return b, nil
}

func (b *bpe) vocab() map[string]int { return b.vocabMap }

// sym is one BPE symbol in a doubly linked list over the word.
type sym struct {
	id         int32
	a, b       int32 // piece byte range
	prev, next int32
}

var errNoUnk = errors.New("no unk")

func (b *bpe) tokenize(p *piece, out []tok) ([]tok, error) {
	s := p.s
	cacheable := len(s) <= 64
	if cacheable {
		if ent, ok := b.cache[b2i(p.byteLevel)].get(s); ok {
			for _, e := range ent {
				out = append(out, tok{int(e.id), int(e.a), int(e.b)})
			}
			return out, nil
		}
	}
	mark := len(out)
	out, err := b.tokenizeWord(p, out)
	if err != nil {
		return out, err
	}
	if cacheable {
		ent := make([]cacheTok, len(out)-mark)
		for i, t := range out[mark:] {
			ent[i] = cacheTok{int32(t.id), int32(t.a), int32(t.b)}
		}
		b.cache[b2i(p.byteLevel)].put(s, ent)
	}
	return out, nil
}

func (b *bpe) tokenizeWord(p *piece, out []tok) ([]tok, error) {
	s := p.s
	if b.ignoreMerges {
		key := s
		if p.byteLevel {
			key = byteLevelString(s)
		}
		if id, ok := b.vocabMap[key]; ok {
			return append(out, tok{id, 0, len(s)}), nil
		}
	}
	var stack [48]sym
	syms := stack[:0]
	add := func(id int32, a, c int) {
		syms = append(syms, sym{id: id, a: int32(a), b: int32(c)})
	}
	if p.byteLevel && b.prefix == "" && b.suffix == "" {
		for i := 0; i < len(s); i++ {
			id := b.byteIDs[s[i]]
			if id < 0 {
				if b.unkID >= 0 {
					if n := len(syms); b.fuseUnk && n > 0 && syms[n-1].id == int32(b.unkID) {
						syms[n-1].b = int32(i + 1)
						continue
					}
					add(int32(b.unkID), i, i+1)
				}
				continue
			}
			add(id, i, i+1)
		}
	} else {
		text := s
		if p.byteLevel {
			// Characters of the byte-level form map back one byte each.
			text = byteLevelString(s)
		}
		unkA, unkB := -1, -1
		flushUnk := func() {
			if unkA >= 0 {
				add(int32(b.unkID), unkA, unkB)
				unkA = -1
			}
		}
		pos := 0 // piece byte position
		for i := 0; i < len(text); {
			_, w := utf8.DecodeRuneInString(text[i:])
			n := w
			if p.byteLevel {
				n = 1
			}
			key := text[i : i+w]
			if i > 0 && b.prefix != "" {
				key = b.prefix + key
			}
			if i+w == len(text) && b.suffix != "" {
				key += b.suffix
			}
			if id, ok := b.vocabMap[key]; ok {
				flushUnk()
				add(int32(id), pos, pos+n)
			} else {
				handled := false
				if b.byteFallback {
					ids := make([]int32, 0, w)
					for k := 0; k < w; k++ {
						bid, ok := b.vocabMap[fmt.Sprintf("<0x%02X>", text[i+k])]
						if !ok {
							break
						}
						ids = append(ids, int32(bid))
					}
					if len(ids) == w {
						flushUnk()
						for k, bid := range ids {
							// Every fallback byte maps to the whole character.
							_ = k
							add(bid, pos, pos+n)
						}
						handled = true
					}
				}
				if !handled && b.unkID >= 0 {
					if unkA >= 0 && b.fuseUnk {
						unkB = pos + n
					} else {
						flushUnk()
						unkA, unkB = pos, pos+n
					}
				}
			}
			i += w
			pos += n
		}
		flushUnk()
	}
	if len(syms) == 0 {
		return out, nil
	}
	for i := range syms {
		syms[i].prev = int32(i - 1)
		syms[i].next = int32(i + 1)
	}
	syms[len(syms)-1].next = -1
	if len(syms) <= 96 {
		b.mergeScan(syms)
	} else {
		b.mergeHeap(syms)
	}
	for i := int32(0); i >= 0; i = syms[i].next {
		out = append(out, tok{int(syms[i].id), int(syms[i].a), int(syms[i].b)})
	}
	return out, nil
}

// mergeScan repeatedly merges the lowest-ranked adjacent pair (leftmost on
// ties), quadratic but fast for ordinary words.
func (b *bpe) mergeScan(syms []sym) {
	for {
		best := int32(-1)
		var bestInfo mergeInfo
		for i := int32(0); syms[i].next >= 0; i = syms[i].next {
			j := syms[i].next
			if m, ok := b.merges[pairKey(syms[i].id, syms[j].id)]; ok && (best < 0 || m.rank < bestInfo.rank) {
				best, bestInfo = i, m
			}
		}
		if best < 0 {
			return
		}
		b.mergeAt(syms, best, bestInfo.id)
	}
}

func (b *bpe) mergeAt(syms []sym, i int32, id int32) {
	j := syms[i].next
	syms[i].id = id
	syms[i].b = syms[j].b
	syms[i].next = syms[j].next
	if syms[j].next >= 0 {
		syms[syms[j].next].prev = i
	}
	syms[j].a, syms[j].b = -1, -1 // dead
}

// mergeHeap is the same algorithm with a priority queue, for long words.
func (b *bpe) mergeHeap(syms []sym) {
	h := &mergeHeap{}
	for i := int32(0); syms[i].next >= 0; i = syms[i].next {
		if m, ok := b.merges[pairKey(syms[i].id, syms[syms[i].next].id)]; ok {
			h.push(heapEnt{m.rank, i, m.id})
		}
	}
	for h.len() > 0 {
		e := h.pop()
		if syms[e.pos].a < 0 || syms[e.pos].next < 0 {
			continue
		}
		j := syms[e.pos].next
		m, ok := b.merges[pairKey(syms[e.pos].id, syms[j].id)]
		if !ok || m.id != e.id || m.rank != e.rank {
			continue
		}
		b.mergeAt(syms, e.pos, e.id)
		if p := syms[e.pos].prev; p >= 0 {
			if m, ok := b.merges[pairKey(syms[p].id, syms[e.pos].id)]; ok {
				h.push(heapEnt{m.rank, p, m.id})
			}
		}
		if n := syms[e.pos].next; n >= 0 {
			if m, ok := b.merges[pairKey(syms[e.pos].id, syms[n].id)]; ok {
				h.push(heapEnt{m.rank, e.pos, m.id})
			}
		}
	}
}

type heapEnt struct {
	rank, pos, id int32
}

func (a heapEnt) less(b heapEnt) bool {
	return a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos)
}

type mergeHeap struct{ e []heapEnt }

func (h *mergeHeap) len() int { return len(h.e) }

func (h *mergeHeap) push(x heapEnt) {
	h.e = append(h.e, x)
	i := len(h.e) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !h.e[i].less(h.e[p]) {
			break
		}
		h.e[i], h.e[p] = h.e[p], h.e[i]
		i = p
	}
}

func (h *mergeHeap) pop() heapEnt {
	top := h.e[0]
	n := len(h.e) - 1
	h.e[0] = h.e[n]
	h.e = h.e[:n]
	i := 0
	for {
		l, r, m := 2*i+1, 2*i+2, i
		if l < n && h.e[l].less(h.e[m]) {
			m = l
		}
		if r < n && h.e[r].less(h.e[m]) {
			m = r
		}
		if m == i {
			break
		}
		h.e[i], h.e[m] = h.e[m], h.e[i]
		i = m
	}
	return top
}

// ---- BPE word cache ----

type cacheTok struct{ id, a, b int32 }

const (
	cacheShards   = 32
	cachePerShard = 2048
)

// bpeCache memoizes the tokens of short words. It is bounded: once a shard
// is full new words are simply not cached, as Hugging Face does.
type bpeCache struct {
	shards [cacheShards]struct {
		mu sync.RWMutex
		m  map[string][]cacheTok
	}
}

func newBPECache() *bpeCache {
	c := &bpeCache{}
	for i := range c.shards {
		c.shards[i].m = make(map[string][]cacheTok)
	}
	return c
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func cacheHash(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint32(s[i])) * 16777619
	}
	return h
}

func (c *bpeCache) get(s string) ([]cacheTok, bool) {
	sh := &c.shards[cacheHash(s)%cacheShards]
	sh.mu.RLock()
	v, ok := sh.m[s]
	sh.mu.RUnlock()
	return v, ok
}

func (c *bpeCache) put(s string, v []cacheTok) {
	sh := &c.shards[cacheHash(s)%cacheShards]
	sh.mu.Lock()
	if len(sh.m) < cachePerShard {
		// Clone: s usually points into a caller's (possibly huge) text.
		sh.m[strings.Clone(s)] = v
	}
	sh.mu.Unlock()
}
