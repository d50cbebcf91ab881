// Command newcomer walks the README's path for someone who has just found
// the repository, in a fresh clone, and fails when a step does not work as
// the README says:
//
//	go run ./scripts/newcomer          # make test-newcomer, the last step of make test
//	go run ./scripts/newcomer -full    # make newcomer: also a full make test in the clone
//
// It clones the repository into a temporary directory (carrying over
// uncommitted changes, so that it checks what is about to be committed;
// -head checks HEAD alone), then:
//
//   - checks the README's shell commands: `go get` must name the module,
//     and every other command must be one this program knows how to check;
//   - runs `go run ./examples/chat` before the page's bundle is installed:
//     the hub must serve, and the program must say how to get the bundle;
//   - runs `make chat` on a free loopback ADDR: it must come up, serve the
//     page and its client bundle, hand out a demo token, answer a negotiate
//     and let a client connect; an interrupt must stop it;
//   - builds the README's Go snippets in a module of its own that uses the
//     clone through a go.work: a block that starts with a package clause is
//     a complete file and must build as it is; any other block is a
//     fragment, compiled with the imports its package names call for,
//     where only names the fragment leaves to the reader (undefined
//     unqualified names) and unused variables and imports are forgiven;
//   - checks the syntax of the README's JavaScript blocks with node --check;
//   - with -full, runs `make test` in the clone.
//
// It needs git, make, Go, Node.js and npm; npm fetches the page's bundle.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	full := flag.Bool("full", false, "also run `make test` in the clone")
	head := flag.Bool("head", false, "check the committed HEAD only, without the working tree's uncommitted changes")
	keep := flag.Bool("keep", false, "keep the temporary clone")
	repo := flag.String("repo", ".", "a directory inside the repository to check")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 40*time.Minute)
	defer cancel()

	cfg := config{Repo: *repo, Full: *full, Head: *head, Keep: *keep, Log: os.Stdout}
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "newcomer:", err)
		os.Exit(1)
	}
}
