package tokenizer

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// configJSON is the part of transformers' tokenizer_config.json we use.
type configJSON struct {
	TokenizerClass       string               `json:"tokenizer_class"`
	DoLowerCase          *bool                `json:"do_lower_case"`
	TokenizeChineseChars *bool                `json:"tokenize_chinese_chars"`
	StripAccents         *bool                `json:"strip_accents"`
	AddPrefixSpace       *bool                `json:"add_prefix_space"`
	TrimOffsets          *bool                `json:"trim_offsets"`
	CleanUp              *bool                `json:"clean_up_tokenization_spaces"`
	AddBOSToken          *bool                `json:"add_bos_token"`
	AddEOSToken          *bool                `json:"add_eos_token"`
	BOS                  rawJSON              `json:"bos_token"`
	EOS                  rawJSON              `json:"eos_token"`
	UNK                  rawJSON              `json:"unk_token"`
	SEP                  rawJSON              `json:"sep_token"`
	PAD                  rawJSON              `json:"pad_token"`
	CLS                  rawJSON              `json:"cls_token"`
	Mask                 rawJSON              `json:"mask_token"`
	AddedTokensDecoder   map[string]addedJSON `json:"added_tokens_decoder"`
	Additional           []rawJSON            `json:"additional_special_tokens"`
}

// configToken is a special token as tokenizer_config.json writes it: a
// string, or an AddedToken object.
type configToken struct {
	Content                            string
	LStrip, RStrip, SingleWord, Normal bool
	set                                bool
}

func parseConfigToken(r rawJSON) (configToken, error) {
	if isNull(r) {
		return configToken{}, nil
	}
	var s string
	if err := json.Unmarshal(r, &s); err == nil {
		return configToken{Content: s, set: true}, nil
	}
	var o struct {
		Content    string `json:"content"`
		LStrip     bool   `json:"lstrip"`
		RStrip     bool   `json:"rstrip"`
		SingleWord bool   `json:"single_word"`
		Normalized bool   `json:"normalized"`
	}
	if err := json.Unmarshal(r, &o); err != nil {
		return configToken{}, fmt.Errorf("special token %s is neither a string nor an AddedToken object", string(r))
	}
	return configToken{o.Content, o.LStrip, o.RStrip, o.SingleWord, o.Normalized, true}, nil
}

func readConfig(dir string) (*configJSON, error) {
	p := filepath.Join(dir, "tokenizer_config.json")
	data, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	var c configJSON
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", p, err)
	}
	return &c, nil
}

// namedTokens returns the config's special tokens by role.
func (c *configJSON) namedTokens() (map[string]configToken, error) {
	out := map[string]configToken{}
	for name, r := range map[string]rawJSON{"bos": c.BOS, "eos": c.EOS, "unk": c.UNK, "sep": c.SEP, "pad": c.PAD, "cls": c.CLS, "mask": c.Mask} {
		t, err := parseConfigToken(r)
		if err != nil {
			return nil, fmt.Errorf("%s_token: %w", name, err)
		}
		if t.set {
			out[name] = t
		}
	}
	return out, nil
}

// applyConfig takes special-token names and decode cleanup from
// tokenizer_config.json.
func (t *Tokenizer) applyConfig(c *configJSON) {
	if c.CleanUp != nil {
		t.cleanup = *c.CleanUp
	}
	named, err := c.namedTokens()
	if err != nil {
		return
	}
	set := func(dst *SpecialToken, role string) {
		if ct, ok := named[role]; ok {
			if id, ok := t.TokenToID(ct.Content); ok {
				*dst = SpecialToken{ct.Content, id}
			}
		}
	}
	set(&t.specials.BOS, "bos")
	set(&t.specials.EOS, "eos")
	set(&t.specials.Unk, "unk")
	set(&t.specials.SEP, "sep")
	set(&t.specials.Pad, "pad")
	set(&t.specials.CLS, "cls")
	set(&t.specials.Mask, "mask")
}

// FromLegacyDir loads a tokenizer from the files transformers' slow
// tokenizers use: vocab.txt (BertTokenizer) or vocab.json + merges.txt
// (GPT2Tokenizer, RobertaTokenizer), configured by tokenizer_config.json.
// The result behaves like the tokenizer.json transformers would convert
// them to.
func FromLegacyDir(dir string) (*Tokenizer, error) {
	cfg, err := readConfig(dir)
	if err != nil {
		return nil, err
	}
	if cfg == nil {
		cfg = &configJSON{}
	}
	class := strings.TrimSuffix(cfg.TokenizerClass, "Fast")
	if class == "" {
		switch {
		case fileExists(filepath.Join(dir, "vocab.txt")):
			class = "BertTokenizer"
		case fileExists(filepath.Join(dir, "vocab.json")) && fileExists(filepath.Join(dir, "merges.txt")):
			class = "GPT2Tokenizer"
		default:
			return nil, fmt.Errorf("tokenizer: %s has no tokenizer.json, vocab.txt or vocab.json + merges.txt", dir)
		}
	}
	named, err := cfg.namedTokens()
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", filepath.Join(dir, "tokenizer_config.json"), err)
	}
	var t *Tokenizer
	switch class {
	case "BertTokenizer", "DistilBertTokenizer", "ElectraTokenizer":
		t, err = legacyBert(dir, cfg, named)
	case "GPT2Tokenizer", "RobertaTokenizer":
		t, err = legacyByteLevel(dir, cfg, named, class == "RobertaTokenizer")
	default:
		return nil, fmt.Errorf("%w: legacy tokenizer class %q in %s", ErrUnsupported, cfg.TokenizerClass, dir)
	}
	if err != nil {
		return nil, err
	}
	t.applyConfig(cfg)
	return t, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func boolOr(p *bool, d bool) bool {
	if p == nil {
		return d
	}
	return *p
}

func tokenOr(named map[string]configToken, role, def string) string {
	if t, ok := named[role]; ok {
		return t.Content
	}
	return def
}

// legacyAdded builds the added-token list: added_tokens_decoder when the
// config has it, else the named special tokens (given an id from the
// vocabulary, or a new one after it).
func legacyAdded(cfg *configJSON, named map[string]configToken, vocab map[string]int, roles []string) ([]AddedToken, error) {
	var out []AddedToken
	if len(cfg.AddedTokensDecoder) > 0 {
		for k, a := range cfg.AddedTokensDecoder {
			id, err := strconv.Atoi(k)
			if err != nil || id < 0 || id >= maxVocabID {
				return nil, fmt.Errorf("tokenizer: added_tokens_decoder key %q is not a valid id", k)
			}
			a.ID = id
			out = append(out, AddedToken(a))
		}
		sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
		return out, nil
	}
	next := 0
	for _, id := range vocab {
		next = max(next, id+1)
	}
	seen := map[string]bool{}
	add := func(ct configToken) {
		if ct.Content == "" || seen[ct.Content] {
			return
		}
		seen[ct.Content] = true
		id, ok := vocab[ct.Content]
		if !ok {
			id = next
			next++
		}
		out = append(out, AddedToken{ID: id, Content: ct.Content, Special: true, LStrip: ct.LStrip,
			RStrip: ct.RStrip, SingleWord: ct.SingleWord, Normalized: ct.Normal})
	}
	for _, r := range roles {
		if ct, ok := named[r]; ok {
			add(ct)
		}
	}
	for _, r := range cfg.Additional {
		ct, err := parseConfigToken(r)
		if err != nil {
			return nil, err
		}
		add(ct)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func legacyBert(dir string, cfg *configJSON, named map[string]configToken) (*Tokenizer, error) {
	p := filepath.Join(dir, "vocab.txt")
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	vocab := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	n := 0
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		vocab[line] = n
		n++
		if n >= maxVocabID {
			return nil, fmt.Errorf("tokenizer: %s: more than %d lines", p, maxVocabID)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("tokenizer: %s: line %d: %w", p, n+1, err)
	}
	lower := boolOr(cfg.DoLowerCase, true)
	unk := tokenOr(named, "unk", "[UNK]")
	cls := tokenOr(named, "cls", "[CLS]")
	sep := tokenOr(named, "sep", "[SEP]")
	for _, role := range []string{"pad", "unk", "cls", "sep", "mask"} {
		if _, ok := named[role]; !ok {
			def := map[string]string{"pad": "[PAD]", "unk": "[UNK]", "cls": "[CLS]", "sep": "[SEP]", "mask": "[MASK]"}[role]
			named[role] = configToken{Content: def, set: true}
		}
	}
	added, err := legacyAdded(cfg, named, vocab, []string{"pad", "unk", "cls", "sep", "mask"})
	if err != nil {
		return nil, err
	}
	ids := map[string]int{}
	for k, v := range vocab {
		ids[k] = v
	}
	for _, a := range added {
		ids[a.Content] = a.ID
	}
	clsID, ok1 := ids[cls]
	sepID, ok2 := ids[sep]
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("tokenizer: %s: cls %q or sep %q is not in the vocabulary", p, cls, sep)
	}
	specials := map[string]templateSpecial{cls: {[]int{clsID}, []string{cls}}, sep: {[]int{sepID}, []string{sep}}}
	b := &builder{
		norm: &bertNormalizer{cleanText: true, chinese: boolOr(cfg.TokenizeChineseChars, true),
			stripAccents: boolOr(cfg.StripAccents, lower), lowercase: lower},
		pre:      bertPre{},
		model:    newWordPiece(vocab, unk, "##", 100),
		modelUnk: unk,
		post: &templateProc{specials: specials,
			single: []templatePiece{{seq: -1, special: cls}, {seq: 0}, {seq: -1, special: sep}},
			pair: []templatePiece{{seq: -1, special: cls}, {seq: 0}, {seq: -1, special: sep},
				{seq: 1, typeID: 1}, {seq: -1, special: sep, typeID: 1}}},
		dec:   wordPieceDec{prefix: "##", cleanup: true},
		added: added,
	}
	return b.build()
}

func legacyByteLevel(dir string, cfg *configJSON, named map[string]configToken, roberta bool) (*Tokenizer, error) {
	vp := filepath.Join(dir, "vocab.json")
	data, err := os.ReadFile(vp)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	vocab, err := parseVocab(data)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", vp, err)
	}
	mp := filepath.Join(dir, "merges.txt")
	mdata, err := os.ReadFile(mp)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	var merges [][2]string
	for i, line := range strings.Split(string(mdata), "\n") {
		line = strings.TrimRight(line, "\r")
		if (i == 0 && strings.HasPrefix(line, "#version")) || strings.TrimSpace(line) == "" {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			return nil, fmt.Errorf("tokenizer: %s: line %d: %q is not two tokens", mp, i+1, line)
		}
		merges = append(merges, [2]string{f[0], f[1]})
	}
	model, err := newBPE(vocab, merges, "", "", "", false, false, false)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", dir, err)
	}
	prefix := boolOr(cfg.AddPrefixSpace, false)
	b := &builder{
		pre:   byteLevelPre{addPrefixSpace: prefix, useRegex: true},
		model: model,
		dec:   byteLevelDec{},
	}
	roles := []string{"bos", "eos", "unk", "pad"}
	if roberta {
		for role, def := range map[string]string{"bos": "<s>", "eos": "</s>", "sep": "</s>", "cls": "<s>", "unk": "<unk>", "pad": "<pad>", "mask": "<mask>"} {
			if _, ok := named[role]; !ok {
				named[role] = configToken{Content: def, set: true}
			}
		}
		roles = []string{"bos", "pad", "eos", "unk", "sep", "cls", "mask"}
	} else {
		for _, role := range []string{"bos", "eos", "unk"} {
			if _, ok := named[role]; !ok {
				named[role] = configToken{Content: "<|endoftext|>", set: true}
			}
		}
		if boolOr(cfg.AddBOSToken, false) || boolOr(cfg.AddEOSToken, false) {
			return nil, fmt.Errorf("%w: GPT2Tokenizer with add_bos_token/add_eos_token", ErrUnsupported)
		}
	}
	if b.added, err = legacyAdded(cfg, named, vocab, roles); err != nil {
		return nil, err
	}
	if roberta {
		ids := map[string]int{}
		for k, v := range vocab {
			ids[k] = v
		}
		for _, a := range b.added {
			ids[a.Content] = a.ID
		}
		cls, sep := named["cls"].Content, named["sep"].Content
		clsID, ok1 := ids[cls]
		sepID, ok2 := ids[sep]
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("tokenizer: %s: cls %q or sep %q is not in the vocabulary", dir, cls, sep)
		}
		b.post = &robertaProc{cls: cls, sep: sep, clsID: clsID, sepID: sepID,
			trimOffsets: boolOr(cfg.TrimOffsets, true), addPrefixSpace: prefix}
	} else {
		b.post = byteLevelProc{trimOffsets: false, addPrefixSpace: true}
	}
	return b.build()
}
