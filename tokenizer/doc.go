// Package tokenizer loads Hugging Face tokenizers (tokenizer.json, or the
// legacy vocab.txt / vocab.json + merges.txt files configured by
// tokenizer_config.json) and encodes and decodes text exactly as the Hugging
// Face tokenizers library does.
//
// The pipeline mirrors Hugging Face's: added tokens are split out first, the
// remaining text is normalized (keeping an alignment from every normalized
// byte back to the original text), pre-tokenized into words, each word is
// tokenized by the model (WordPiece, BPE, WordLevel or Unigram, with
// SentencePiece's compiled Precompiled normalizer), and a post-processor
// adds special tokens. Truncation and padding follow the same rules as
// Hugging Face.
//
// Regex patterns (Split, Replace) are matched as Hugging Face's Oniguruma
// matches them: the pre-tokenizer patterns of GPT-2, GPT-4 (cl100k, which
// Llama 3 ships), Qwen2, GPT-4o (o200k) and Mistral's Tekken by
// hand-written matchers, any other pattern, lookaround included, by the
// regexp2 engine. Every size a file asks for is bounded (MaxSequenceLength).
//
// A Tokenizer is immutable after loading and safe for concurrent use.
// Offsets in an Encoding are byte offsets into the text the token came from;
// Encoding.CharOffsets converts them to code-point offsets (what Python
// reports).
package tokenizer
