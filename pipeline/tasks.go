package pipeline

import (
	"context"
	"fmt"

	"github.com/embrace-go/embrace/hfdir"
	"github.com/embrace-go/embrace/models"
	"github.com/embrace-go/embrace/models/arch"
)

// Task names a pipeline, as Hugging Face's pipeline() names them.
type Task string

// The pipelines.
const (
	TaskSentenceEmbedding   Task = "sentence-embedding" // SentenceEmbedder
	TaskFeatureExtraction   Task = "feature-extraction" // FeatureExtractor
	TaskTextClassification  Task = "text-classification"
	TaskTokenClassification Task = "token-classification"
	TaskQuestionAnswering   Task = "question-answering"
	TaskFillMask            Task = "fill-mask"
	TaskTextGeneration      Task = "text-generation"
	// TaskRerank scores (query, passage) pairs with a cross-encoder
	// (Reranker).
	TaskRerank Task = "rerank"
	// TaskZeroShotClassification scores arbitrary labels with an NLI model
	// (ZeroShotClassifier).
	TaskZeroShotClassification Task = "zero-shot-classification"
)

// Tasks opens a folder (or Hub repo id) and lists the pipelines its model
// can serve, the most specific first: a sentence-transformers folder
// leads with sentence embeddings, a classifier with text classification, a
// cross-encoder (a one-label classifier) with reranking. It reads
// config.json and modules.json only, not the weights.
func Tasks(ctx context.Context, nameOrDir string, opt *Options) ([]Task, error) {
	dir, err := resolve(ctx, nameOrDir, opt)
	if err != nil {
		return nil, err
	}
	f, err := hfdir.Read(dir)
	if err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	return FolderTasks(f)
}

// FolderTasks is Tasks over a folder's metadata already read.
func FolderTasks(f *hfdir.Folder) ([]Task, error) {
	var tasks []Task
	if f.SentenceTransformers != nil {
		if m, ok := f.SentenceTransformers.Transformer(); ok && m.Path != "" {
			sub, err := hfdir.Read(f.Path(m.Path))
			if err != nil {
				return nil, fmt.Errorf("pipeline: %w", err)
			}
			f = sub
		}
		tasks = append(tasks, TaskSentenceEmbedding)
	}
	head, err := models.Task(f)
	if err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	switch head {
	case arch.TaskBase:
		if len(tasks) == 0 {
			tasks = append(tasks, TaskSentenceEmbedding)
		}
		tasks = append(tasks, TaskFeatureExtraction)
	case arch.TaskMaskedLM, arch.TaskPreTraining:
		tasks = append(tasks, TaskFillMask)
	case arch.TaskSequenceClassification:
		// A one-label classifier is a cross-encoder first; an NLI model
		// (an entailment label) also answers zero-shot classification.
		if len(f.Config.ID2Label) == 1 {
			tasks = append(tasks, TaskRerank)
		}
		tasks = append(tasks, TaskTextClassification)
		if _, ok, _ := entailmentID(f.Config); ok {
			tasks = append(tasks, TaskZeroShotClassification)
		}
	case arch.TaskTokenClassification:
		tasks = append(tasks, TaskTokenClassification)
	case arch.TaskQuestionAnswering:
		tasks = append(tasks, TaskQuestionAnswering)
	case arch.TaskCausalLM:
		tasks = append(tasks, TaskTextGeneration)
	}
	return tasks, nil
}
