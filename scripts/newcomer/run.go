package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// config says what run checks.
type config struct {
	Repo string    // a directory inside the repository
	Full bool      // also run make test in the clone
	Head bool      // clone HEAD without the uncommitted changes
	Keep bool      // leave the temporary directory behind
	Log  io.Writer // progress and results
}

// check is one step's outcome.
type check struct {
	name string
	err  error
	note string // why it was not run, when err is nil and it was skipped
}

// run clones the repository and walks the README's path, reporting every
// step, and returns an error naming the steps that failed.
func run(ctx context.Context, cfg config) error {
	tmp, err := os.MkdirTemp("", "newcomer-")
	if err != nil {
		return err
	}
	if cfg.Keep {
		fmt.Fprintln(cfg.Log, "newcomer: keeping", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	logf := func(format string, args ...any) { fmt.Fprintf(cfg.Log, "newcomer: "+format+"\n", args...) }

	clone := filepath.Join(tmp, "signalhub")
	carried, err := cloneRepo(ctx, cfg.Repo, clone, !cfg.Head)
	if err != nil {
		return err
	}
	logf("cloned into %s (%s)", clone, carried)

	readme, err := os.ReadFile(filepath.Join(clone, "README.md"))
	if err != nil {
		return err
	}
	blocks := parseBlocks(string(readme))
	modPath, err := modulePath(filepath.Join(clone, "go.mod"))
	if err != nil {
		return err
	}

	var checks []check
	add := func(c check) {
		checks = append(checks, c)
		switch {
		case c.err != nil:
			logf("FAIL %s: %v", c.name, c.err)
		case c.note != "":
			logf("skip %s: %s", c.name, c.note)
		default:
			logf("ok   %s", c.name)
		}
	}

	cmds, err := readmeCommands(blocks)
	add(check{name: "the README's commands are ones this check knows", err: err})
	for _, c := range cmds {
		switch c.program {
		case "go get":
			add(check{name: "README: " + c.line, err: checkGoGet(c, modPath)})
		case "make chat":
			// Before make chat installs the bundle, the README promises
			// that the chat alone works and says how to get the page.
			add(check{name: "README: go run ./examples/chat (no bundle yet)", err: checkChatWithoutBundle(ctx, clone, logf)})
			add(check{name: "README: " + c.line, err: checkMakeChat(ctx, clone, c, logf)})
		case "make test":
			if !cfg.Full {
				add(check{name: "README: " + c.line, note: "make newcomer runs it"})
				continue
			}
			add(check{name: "README: " + c.line, err: runLogged(ctx, clone, cfg.Log, "make", "test")})
		}
	}
	add(check{name: "the README's Go snippets compile", err: checkGoSnippets(ctx, tmp, clone, modPath, blocks, logf)})
	c := check{name: "the README's JavaScript parses"}
	c.note, c.err = checkJSSnippets(ctx, tmp, blocks)
	add(c)

	var failed []string
	for _, c := range checks {
		if c.err != nil {
			failed = append(failed, c.name)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d checks failed: %s", len(failed), len(checks), strings.Join(failed, "; "))
	}
	logf("all %d checks passed", len(checks))
	return nil
}

// newcomerEnv is the environment of a newcomer's fresh shell: this
// process's, without what a make or go test around us would pass on.
func newcomerEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "GOWORK":
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// runLogged runs a command in dir as a newcomer would, its output going to
// w.
func runLogged(ctx context.Context, dir string, w io.Writer, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Env = dir, newcomerEnv()
	cmd.Stdout, cmd.Stderr = w, w
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return nil
}

// output runs a command in dir and returns its combined output.
func output(ctx context.Context, dir string, env []string, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Env = dir, env
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// modulePath reads the module path from a go.mod file.
func modulePath(gomod string) (string, error) {
	b, err := os.ReadFile(gomod)
	if err != nil {
		return "", err
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "module "); ok {
			return strings.Trim(strings.TrimSpace(rest), `"`), nil
		}
	}
	return "", errors.New(gomod + ": no module line")
}
