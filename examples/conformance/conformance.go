// Command conformance holds Embrace to the reference fixtures: it checks
// every fixture folder under the given paths against the public API and
// prints one PASS or FAIL line per fixture (the checks live in
// internal/conformance; "embrace conformance" runs the same).
//
//	go run ./examples/conformance [-v] PATH...
package main

import (
	"os"

	"github.com/embrace-go/embrace/internal/conformance"
)

func main() { os.Exit(conformance.Main(os.Args[1:])) }
