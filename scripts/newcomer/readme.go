package main

import (
	"errors"
	"fmt"
	"strings"
)

// block is a fenced code block of a Markdown file.
type block struct {
	lang string // the info string's first word: "go", "sh", "" ...
	line int    // the line number of the first line of code, from 1
	code string
}

// parseBlocks returns the fenced code blocks of a Markdown text, in order.
// A fence is a line of three or more backticks or tildes, indented by at
// most three spaces; the block ends at a fence of the same character at
// least as long, or at the end of the text.
func parseBlocks(md string) []block {
	var blocks []block
	var cur *block
	var fence string
	var code strings.Builder
	n := 0
	for line := range strings.Lines(md) {
		n++
		text := strings.TrimRight(line, "\r\n")
		trimmed := strings.TrimLeft(text, " ")
		indented := len(text)-len(trimmed) <= 3
		if cur == nil {
			if f := fenceOf(trimmed); f != "" && indented {
				info := strings.TrimSpace(trimmed[len(f):])
				lang, _, _ := strings.Cut(info, " ")
				cur, fence = &block{lang: strings.ToLower(lang), line: n + 1}, f
				code.Reset()
			}
			continue
		}
		if f := fenceOf(trimmed); indented && f != "" && f[0] == fence[0] && len(f) >= len(fence) && strings.TrimSpace(trimmed[len(f):]) == "" {
			cur.code = code.String()
			blocks = append(blocks, *cur)
			cur = nil
			continue
		}
		code.WriteString(text)
		code.WriteByte('\n')
	}
	if cur != nil {
		cur.code = code.String()
		blocks = append(blocks, *cur)
	}
	return blocks
}

// fenceOf returns the run of backticks or tildes that opens s when it is
// a fence (three or more), else "".
func fenceOf(s string) string {
	if s == "" || (s[0] != '`' && s[0] != '~') {
		return ""
	}
	i := 0
	for i < len(s) && s[i] == s[0] {
		i++
	}
	if i < 3 || (s[0] == '`' && strings.Contains(s[i:], "`")) {
		return ""
	}
	return s[:i]
}

// command is a shell command the README tells a newcomer to run.
type command struct {
	line    string   // as written, without its comment
	env     []string // leading VAR=value assignments
	program string   // what the check knows it as: "make chat", "go get", ...
	args    []string // the words after the program
	readme  int      // its line in the README
}

// knownCommands are the commands this check knows how to check, by their
// first words.
var knownCommands = []string{"make chat", "make test", "go get"}

// readmeCommands returns the commands of the README's shell blocks (sh,
// bash, shell, console, and blocks without a language whose every line
// runs go or make), and an error naming any command this check does not
// know how to check, so that a new instruction in the README cannot go
// unchecked.
func readmeCommands(blocks []block) ([]command, error) {
	var cmds []command
	var unknown []string
	for _, b := range blocks {
		switch b.lang {
		case "sh", "bash", "shell", "console":
		case "":
			if !allCommands(b.code) {
				continue
			}
		default:
			continue
		}
		n := b.line - 1
		for line := range strings.Lines(b.code) {
			n++
			text := strings.TrimSpace(stripComment(line))
			text = strings.TrimPrefix(text, "$ ")
			if text == "" {
				continue
			}
			c := parseCommand(text, n)
			if c.program == "" {
				unknown = append(unknown, fmt.Sprintf("README.md:%d: %s", n, text))
				continue
			}
			cmds = append(cmds, c)
		}
	}
	if len(unknown) > 0 {
		return cmds, errors.New("the README tells newcomers to run commands that scripts/newcomer does not check (teach it to):\n\t" +
			strings.Join(unknown, "\n\t"))
	}
	if len(cmds) == 0 {
		return nil, errors.New("no newcomer commands found in the README's shell blocks")
	}
	return cmds, nil
}

// allCommands reports whether every non-blank line of code starts with go
// or make, as in a language-less block holding `go get ...`.
func allCommands(code string) bool {
	found := false
	for line := range strings.Lines(code) {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if f[0] != "go" && f[0] != "make" {
			return false
		}
		found = true
	}
	return found
}

// stripComment drops a shell comment: from a # at the start of the line or
// after a blank.
func stripComment(line string) string {
	if strings.HasPrefix(strings.TrimSpace(line), "#") {
		return ""
	}
	if i := strings.Index(line, " #"); i >= 0 {
		return line[:i]
	}
	return line
}

// parseCommand splits a command line into its environment assignments and
// the known program it runs (program is "" when it is not known).
func parseCommand(text string, readmeLine int) command {
	words := strings.Fields(text)
	c := command{line: text, readme: readmeLine}
	for len(words) > 0 && strings.Contains(words[0], "=") && !strings.HasPrefix(words[0], "-") {
		c.env = append(c.env, words[0])
		words = words[1:]
	}
	rest := strings.Join(words, " ")
	for _, k := range knownCommands {
		if rest == k || strings.HasPrefix(rest, k+" ") {
			c.program = k
			c.args = strings.Fields(strings.TrimPrefix(rest, k))
			return c
		}
	}
	return c
}

// checkGoGet checks that `go get` names the module the repository holds (a
// package of it would do too). The command itself is not run: the clone is
// what a newcomer would fetch, and the snippet check uses it through a
// go.work instead.
func checkGoGet(c command, modPath string) error {
	if len(c.args) != 1 {
		return fmt.Errorf("README.md:%d: want `go get %s`, got %q", c.readme, modPath, c.line)
	}
	arg, _, _ := strings.Cut(c.args[0], "@")
	if arg != modPath && !strings.HasPrefix(arg, modPath+"/") {
		return fmt.Errorf("README.md:%d: `go get %s` does not name the module, %s", c.readme, arg, modPath)
	}
	return nil
}
