// "embrace tokenize" shows how a model's tokenizer splits text: the ids,
// tokens and offsets of each input, exactly as Hugging Face tokenizers
// would give them.
//
//	embrace tokenize -model path/to/model "Hello world!"
//	echo "Hello world!" | embrace tokenize -json
//	embrace tokenize -decode "101 7592 2088 999 102"
//
// Run "embrace tokenize -h" for every flag.

package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/embrace-go/embrace/internal/cli"
	"github.com/embrace-go/embrace/tokenizer"
)

var tokenizeCommand = &cli.Command{
	Name:     "embrace tokenize",
	Summary:  "show the ids, tokens and offsets a model's tokenizer gives each input",
	Synopsis: "[TEXT...]",
	Details: `Input: each argument is one text; without arguments, each non-blank line of
stdin is one text. With -pair an input is "TEXT<TAB>PAIR" and is encoded as a
sentence pair. With -decode an input is a list of ids separated by spaces or
commas, and the decoded text is printed instead.

Output: per input, a table of position, id, token and offsets (byte offsets
into the input; -chars for code points, as Hugging Face reports them). With
-json, one JSON object per input and line, holding ids, tokens, offsets (bytes),
char_offsets (code points), type_ids, attention_mask, special_tokens_mask and
word_ids (-1 for special tokens); with -decode, {"ids": [...], "text": "..."}.

The tokenizer is read from the model folder: tokenizer.json, or the legacy
vocab.txt / vocab.json + merges.txt with tokenizer_config.json.`,
	DefaultModel: "google-bert/bert-base-uncased",
}

// tokenizeOptions are the parsed flags.
type tokenizeOptions struct {
	asJSON      bool
	pair        bool
	noSpecial   bool
	chars       bool
	decode      bool
	keepSpecial bool
}

// run is the whole program, callable from tests.
func runTokenize(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := tokenizeCommand.NewFlagSet()
	model := tokenizeCommand.ModelFlag(fs)
	var o tokenizeOptions
	fs.BoolVar(&o.asJSON, "json", false, "print one JSON object per input")
	fs.BoolVar(&o.pair, "pair", false, `encode each input "TEXT<TAB>PAIR" as a sentence pair`)
	fs.BoolVar(&o.noSpecial, "no-special", false, "do not add special tokens such as [CLS] and [SEP]")
	fs.BoolVar(&o.chars, "chars", false, "show offsets in code points instead of bytes (text output)")
	fs.BoolVar(&o.decode, "decode", false, "decode lists of ids back to text instead of encoding")
	fs.BoolVar(&o.keepSpecial, "keep-special", false, "with -decode, keep special tokens in the text")
	if ok, code := tokenizeCommand.Parse(fs, args, stdout, stderr); !ok {
		return code
	}
	if o.pair && o.decode {
		return tokenizeCommand.Failf(stderr, "-pair and -decode cannot be used together")
	}

	dir, err := cli.ResolveModel(ctx, *model)
	if err != nil {
		return tokenizeCommand.Fail(stderr, err)
	}
	tok, err := tokenizer.FromDir(dir)
	if err != nil {
		return tokenizeCommand.Fail(stderr, fmt.Errorf("loading the tokenizer: %w", err))
	}
	if len(fs.Args()) == 0 && cli.StdinIsTerminal() && stdin == os.Stdin {
		fmt.Fprintln(stderr, "embrace tokenize: reading inputs from stdin, one per line (Ctrl-D ends)")
	}

	out := newTokenizePrinter(stdout, o)
	handle := func(where, item string) error {
		if o.decode {
			return decodeOne(tok, where, item, o, out)
		}
		return encodeOne(tok, where, item, o, out)
	}
	if len(fs.Args()) > 0 {
		for i, a := range fs.Args() {
			if err := handle(fmt.Sprintf("argument %d", i+1), a); err != nil {
				return tokenizeCommand.Fail(stderr, err)
			}
		}
		return cli.ExitOK
	}
	err = cli.Lines(ctx, stdin, func(n int, line string) error {
		return handle(fmt.Sprintf("stdin line %d", n), line)
	})
	if err != nil {
		return tokenizeCommand.Fail(stderr, err)
	}
	return cli.ExitOK
}

// encodeOne tokenizes one input and prints it.
func encodeOne(tok *tokenizer.Tokenizer, where, item string, o tokenizeOptions, out *tokenizePrinter) error {
	text, pair := item, ""
	var (
		enc *tokenizer.Encoding
		err error
	)
	if o.pair {
		var ok bool
		text, pair, ok = strings.Cut(item, "\t")
		if !ok {
			return fmt.Errorf("%s: -pair wants TEXT<TAB>PAIR, found no tab", where)
		}
		enc, err = tok.EncodePair(text, pair, !o.noSpecial)
	} else {
		enc, err = tok.Encode(text, !o.noSpecial)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	return out.encoding(text, pair, o.pair, enc)
}

// decodeOne parses a list of ids and prints the decoded text.
func decodeOne(tok *tokenizer.Tokenizer, where, item string, o tokenizeOptions, out *tokenizePrinter) error {
	fields := strings.FieldsFunc(item, func(r rune) bool {
		return r == ' ' || r == ',' || r == '\t' || r == '[' || r == ']'
	})
	ids := make([]int, 0, len(fields))
	for _, f := range fields {
		id, err := strconv.Atoi(f)
		if err != nil || id < 0 || id >= tok.VocabSize() {
			return fmt.Errorf("%s: %q is not a token id (want an integer in 0..%d)", where, f, tok.VocabSize()-1)
		}
		ids = append(ids, id)
	}
	text, err := tok.Decode(ids, !o.keepSpecial)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	return out.decoded(ids, text)
}

// tokenizePrinter renders results as text tables or JSON Lines.
type tokenizePrinter struct {
	w    io.Writer
	o    tokenizeOptions
	json *cli.JSONLines
	n    int
}

func newTokenizePrinter(w io.Writer, o tokenizeOptions) *tokenizePrinter {
	return &tokenizePrinter{w: w, o: o, json: cli.NewJSONLines(w)}
}

// encodingJSON is the -json shape of one encoded input; field names follow
// Hugging Face's Encoding.
type encodingJSON struct {
	Text              string   `json:"text"`
	Pair              *string  `json:"pair,omitempty"`
	IDs               []int    `json:"ids"`
	Tokens            []string `json:"tokens"`
	Offsets           [][2]int `json:"offsets"`
	CharOffsets       [][2]int `json:"char_offsets"`
	TypeIDs           []int    `json:"type_ids"`
	AttentionMask     []int    `json:"attention_mask"`
	SpecialTokensMask []int    `json:"special_tokens_mask"`
	WordIDs           []int    `json:"word_ids"`
	Overflowing       int      `json:"overflowing,omitempty"`
}

func pairs(offs []tokenizer.Offset) [][2]int {
	p := make([][2]int, len(offs))
	for i, o := range offs {
		p[i] = [2]int{o.Start, o.End}
	}
	return p
}

func (p *tokenizePrinter) encoding(text, pair string, isPair bool, enc *tokenizer.Encoding) error {
	chars := enc.CharOffsets(text, pair)
	if p.o.asJSON {
		j := encodingJSON{
			Text:              text,
			IDs:               tokenizeNonNil(enc.IDs),
			Tokens:            enc.Tokens,
			Offsets:           pairs(enc.Offsets),
			CharOffsets:       pairs(chars),
			TypeIDs:           tokenizeNonNil(enc.TypeIDs),
			AttentionMask:     tokenizeNonNil(enc.AttentionMask),
			SpecialTokensMask: tokenizeNonNil(enc.SpecialTokensMask),
			WordIDs:           tokenizeNonNil(enc.WordIDs),
			Overflowing:       len(enc.Overflowing),
		}
		if j.Tokens == nil {
			j.Tokens = []string{}
		}
		if isPair {
			j.Pair = &pair
		}
		return p.json.Write(j)
	}
	if p.n > 0 {
		fmt.Fprintln(p.w)
	}
	p.n++
	if isPair {
		fmt.Fprintf(p.w, "%q + %q: %d tokens\n", text, pair, len(enc.IDs))
	} else {
		fmt.Fprintf(p.w, "%q: %d tokens\n", text, len(enc.IDs))
	}
	offs := enc.Offsets
	unit := "bytes"
	if p.o.chars {
		offs, unit = chars, "chars"
	}
	tw := tabwriter.NewWriter(p.w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  #\tid\ttoken\t%s\n", unit)
	for i, id := range enc.IDs {
		tokStr := ""
		if i < len(enc.Tokens) {
			tokStr = enc.Tokens[i]
		}
		span := ""
		if i < len(offs) {
			span = fmt.Sprintf("%d-%d", offs[i].Start, offs[i].End)
		}
		if isPair && i < len(enc.SequenceIDs) && enc.SequenceIDs[i] == 1 {
			span += " (pair)"
		}
		fmt.Fprintf(tw, "  %d\t%d\t%s\t%s\n", i, id, tokStr, span)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("writing output: %w", err)
	}
	if n := len(enc.Overflowing); n > 0 {
		fmt.Fprintf(p.w, "  (truncated by the tokenizer's settings; %d overflowing part(s) not shown)\n", n)
	}
	return nil
}

func (p *tokenizePrinter) decoded(ids []int, text string) error {
	if p.o.asJSON {
		return p.json.Write(struct {
			IDs  []int  `json:"ids"`
			Text string `json:"text"`
		}{tokenizeNonNil(ids), text})
	}
	_, err := fmt.Fprintln(p.w, text)
	return err
}

// tokenizeNonNil makes empty lists print as [] rather than null in JSON.
func tokenizeNonNil(s []int) []int {
	if s == nil {
		return []int{}
	}
	return s
}
