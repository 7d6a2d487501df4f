// Command embrace runs Hugging Face models from the command line and serves
// them over HTTP, with the Embrace library only: no Python, no cgo.
//
//	go install github.com/embrace-go/embrace/cmd/embrace@latest
//
//	embrace serve -model sentence-transformers/all-MiniLM-L6-v2
//	embrace embed "Hello world!" "Embrace runs transformers in Go."
//	embrace generate -model openai-community/gpt2 "Once upon a time"
//	embrace tokenize -model google-bert/bert-base-uncased "Hello world!"
//	embrace classify "I loved this film"      # also ner, qa, fill-mask
//	embrace download sentence-transformers/all-MiniLM-L6-v2
//	embrace conformance ../shared/fixtures
//
// Run "embrace help" for the list, and "embrace <command> -h" for a
// command's flags.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/embrace-go/embrace/internal/cli"
)

// subcommand is one "embrace <name>" program.
type subcommand struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int
}

// subcommands lists every command in the order help prints them.
func subcommands() []subcommand {
	return []subcommand{
		{"serve", serveCommand.Summary, runServe},
		{"embed", embedCommand.Summary, runEmbed},
		{"generate", generateCommand.Summary, runGenerate},
		{"tokenize", tokenizeCommand.Summary, runTokenize},
		{"classify", classifyCommand.Summary, runClassify},
		{"ner", nerCommand.Summary, runNER},
		{"qa", qaCommand.Summary, runQA},
		{"fill-mask", fillMaskCommand.Summary, runFillMask},
		{"download", downloadCommand.Summary, runDownload},
		{"conformance", conformanceCommand.Summary, runConformance},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches to the subcommand named by args[0].
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return cli.ExitUsage
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 {
			// "embrace help serve" is "embrace serve -h".
			return run(ctx, []string{args[1], "-h"}, stdin, stdout, stderr)
		}
		usage(stdout)
		return cli.ExitOK
	}
	for _, c := range subcommands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdin, stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "embrace: unknown command %q (run embrace help for the list)\n", args[0])
	return cli.ExitUsage
}

func usage(w io.Writer) {
	var b strings.Builder
	b.WriteString("embrace: Hugging Face models in pure Go\n\nUsage:\n  embrace <command> [flags] [arguments]\n\nCommands:\n")
	for _, c := range subcommands() {
		fmt.Fprintf(&b, "  %-12s %s\n", c.name, c.summary)
	}
	b.WriteString("\nRun embrace <command> -h for a command's flags. -model takes a local model\nfolder (fully offline) or a Hugging Face Hub repo id (org/name), downloaded\ninto the Hugging Face cache (HF_HOME, HF_HUB_CACHE, HF_TOKEN, HF_HUB_OFFLINE).\n")
	io.WriteString(w, b.String())
}
