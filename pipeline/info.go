package pipeline

import "github.com/embrace-go/embrace/models/arch"

// ModelInfo describes the loaded model: its architecture, head, labels and
// MaxPositions (the longest input its position table allows).
func (c *TextClassifier) ModelInfo() arch.Info { return c.enc.info }

// ModelInfo describes the loaded model (see TextClassifier.ModelInfo).
func (c *TokenClassifier) ModelInfo() arch.Info { return c.enc.info }

// ModelInfo describes the loaded model (see TextClassifier.ModelInfo).
func (q *QuestionAnswerer) ModelInfo() arch.Info { return q.enc.info }

// ModelInfo describes the loaded model (see TextClassifier.ModelInfo).
func (f *FillMask) ModelInfo() arch.Info { return f.enc.info }

// ModelInfo describes the loaded model (see TextClassifier.ModelInfo).
func (s *SentenceEmbedder) ModelInfo() arch.Info { return s.enc.info }

// ModelInfo describes the loaded model (see TextClassifier.ModelInfo).
func (f *FeatureExtractor) ModelInfo() arch.Info { return f.enc.info }

// ModelInfo describes the loaded model (see TextClassifier.ModelInfo).
func (r *Reranker) ModelInfo() arch.Info { return r.enc.info }

// ModelInfo describes the loaded model (see TextClassifier.ModelInfo).
func (z *ZeroShotClassifier) ModelInfo() arch.Info { return z.enc.info }
