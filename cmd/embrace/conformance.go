package main

import (
	"context"
	"fmt"
	"io"

	"github.com/embrace-go/embrace/internal/cli"
	"github.com/embrace-go/embrace/internal/conformance"
)

var conformanceCommand = &cli.Command{
	Name:     "embrace conformance",
	Summary:  "check the library against Hugging Face reference fixtures",
	Synopsis: "PATH...",
	Details: `Finds every fixture folder at or under the paths (a folder holding
cases.jsonl is a tokenizer fixture, one holding reference.json a model
fixture) and checks the library's public API against it, as
examples/conformance does. Prints one line per fixture to stdout, PASS or FAIL
with the reason and the worst numeric error, then "N passed, M failed"; exits
1 when anything failed. With -quantize q8 or -compute bf16 the models load in
that precision and each model fixture's line (ACCURACY) gives its largest
error, smallest cosine and the checks outside the float32 tolerances instead
of PASS or FAIL.`,
}

func runConformance(_ context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := conformanceCommand.NewFlagSet()
	opts := conformance.Flags(fs)
	if ok, code := conformanceCommand.Parse(fs, args, stdout, stderr); !ok {
		return code
	}
	o, err := opts()
	if err != nil {
		return conformanceCommand.Fail(stderr, err)
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "embrace conformance: name at least one fixtures folder, e.g. ../shared/fixtures (run embrace conformance -h for help)")
		return cli.ExitUsage
	}
	// The runner prints to standard output itself.
	if _, failed := conformance.RunPaths(fs.Args(), o); failed > 0 {
		return cli.ExitError
	}
	return cli.ExitOK
}
