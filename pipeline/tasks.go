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
)

// Tasks opens a folder (or Hub repo id) and lists the pipelines its model
// can serve, the most specific first: a sentence-transformers folder
// leads with sentence embeddings, a classifier with text classification. It
// reads config.json and modules.json only, not the weights.
func Tasks(ctx context.Context, nameOrDir string) ([]Task, error) {
	dir, err := resolve(ctx, nameOrDir)
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
		tasks = append(tasks, TaskTextClassification)
	case arch.TaskTokenClassification:
		tasks = append(tasks, TaskTokenClassification)
	case arch.TaskQuestionAnswering:
		tasks = append(tasks, TaskQuestionAnswering)
	case arch.TaskCausalLM:
		tasks = append(tasks, TaskTextGeneration)
	}
	return tasks, nil
}
