package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/embrace-go/embrace/hub"
	"github.com/embrace-go/embrace/internal/cli"
)

var downloadCommand = &cli.Command{
	Name:     "embrace download",
	Summary:  "download a Hub model into the Hugging Face cache and print its folder",
	Synopsis: "ORG/NAME[@REVISION]...",
	Details: `Fetches what a model needs (config.json, the safetensors weights, the
tokenizer files, generation_config.json and the sentence-transformers modules)
into the Hugging Face cache that Python's huggingface_hub shares, and prints
each snapshot folder on its own line. A file already cached is not fetched
again. HF_ENDPOINT, HF_TOKEN, HF_HOME / HF_HUB_CACHE and HF_HUB_OFFLINE apply;
progress goes to stderr when it is a terminal.`,
}

func runDownload(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := downloadCommand.NewFlagSet()
	revision := fs.String("revision", "", "`revision` (branch, tag or commit) for every repo that does not name one after @ (default main)")
	if ok, code := downloadCommand.Parse(fs, args, stdout, stderr); !ok {
		return code
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "embrace download: name at least one Hub repo id, e.g. sentence-transformers/all-MiniLM-L6-v2 (run embrace download -h for help)")
		return cli.ExitUsage
	}
	c := hub.NewClient()
	for _, arg := range fs.Args() {
		repo, rev, hasRev := strings.Cut(arg, "@")
		if !hasRev {
			rev = *revision
		}
		if !hub.IsRepoID(repo) {
			return downloadCommand.Failf(stderr, "%q is not a Hub repo id (want org/name or org/name@revision)", arg)
		}
		dir, err := c.Snapshot(ctx, repo, rev)
		if err != nil {
			return downloadCommand.Fail(stderr, err)
		}
		fmt.Fprintln(stdout, dir)
	}
	return cli.ExitOK
}
