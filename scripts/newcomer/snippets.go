package main

import (
	"context"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/scanner"
	"go/token"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// packageNames maps the package names README fragments use to import
// paths; "{mod}" stands for the module's path. A fragment gets an import for
// every one of these names it qualifies an identifier with.
var packageNames = map[string]string{
	"context": "context", "errors": "errors", "fmt": "fmt", "io": "io", "log": "log",
	"os": "os", "strings": "strings", "sync": "sync", "testing": "testing", "time": "time",
	"json": "encoding/json", "http": "net/http", "httptest": "net/http/httptest", "slog": "log/slog",

	"signalhub":     "{mod}",
	"client":        "{mod}/client",
	"hubtest":       "{mod}/hubtest",
	"protocol":      "{mod}/protocol",
	"backplane":     "{mod}/backplane",
	"backplanetest": "{mod}/backplane/backplanetest",
	"redisbp":       "{mod}/backplane/redis",
	"natsbp":        "{mod}/backplane/nats",
	"chatapp":       "{mod}/examples/chatapp",
	"otelhub":       "{mod}/otelhub",

	"jwt":     "github.com/golang-jwt/jwt/v5",
	"redis":   "github.com/redis/go-redis/v9",
	"goredis": "github.com/redis/go-redis/v9",
	"nats":    "github.com/nats-io/nats.go",
	"natsgo":  "github.com/nats-io/nats.go",
}

// forgiven are the compiler's complaints about what a fragment leaves to
// the reader: names it does not define (`auth`, `ctx`), and variables and
// imports it does not use.
var forgiven = []*regexp.Regexp{
	regexp.MustCompile(`^undefined: [\pL_][\pL\pN_]*$`),
	regexp.MustCompile(`^declared and not used: [\pL_][\pL\pN_]*$`),
	regexp.MustCompile(`^[\pL_][\pL\pN_]* declared and not used$`),
	regexp.MustCompile(`^"[^"]+" imported (as [\pL_][\pL\pN_]* )?and not used$`),
}

// snippet is a Go block of the README written out for the compiler.
type snippet struct {
	b        block
	dir      string // relative to the snippets module
	file     string // its file in dir
	header   int    // lines of the file before the block's first line
	complete bool
}

// checkGoSnippets builds the README's Go blocks in a module of their own
// under tmp, which uses the clone's modules through a go.work, and returns
// an error listing every problem by its README line.
func checkGoSnippets(ctx context.Context, tmp, clone, modPath string, blocks []block, logf func(string, ...any)) error {
	mod := filepath.Join(tmp, "snippets")
	if err := os.MkdirAll(mod, 0o755); err != nil {
		return err
	}
	goVersion, err := goDirective(filepath.Join(clone, "go.mod"))
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(mod, "go.mod"), []byte("module newcomer.example/snippets\n\ngo "+goVersion+"\n"), 0o644); err != nil {
		return err
	}
	work, err := workspace(clone, mod)
	if err != nil {
		return err
	}
	workFile := filepath.Join(tmp, "go.work")
	if err := os.WriteFile(workFile, []byte(work), 0o644); err != nil {
		return err
	}

	var snippets []snippet
	var problems []string
	for i, b := range blocks {
		if b.lang != "go" {
			continue
		}
		s, err := writeSnippet(mod, fmt.Sprintf("s%d", i+1), b, modPath)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		snippets = append(snippets, s)
	}
	if len(snippets)+len(problems) == 0 {
		return errors.New("the README has no Go blocks")
	}

	env := newcomerEnv("GOWORK=" + workFile)
	complete := 0
	for _, s := range snippets {
		// vet type-checks test files too; build tolerates fragments' gaps.
		args := []string{"build", "-gcflags=-e", "./" + s.dir}
		if s.complete {
			args = []string{"vet", "./" + s.dir}
			complete++
		}
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir, cmd.Env = mod, env
		out, err := cmd.CombinedOutput()
		if err == nil {
			continue
		}
		found := compilerProblems(s, string(out))
		if len(found) == 0 && !s.complete && fragmentOnlyForgiven(s, string(out)) {
			continue
		}
		if len(found) == 0 {
			found = []string{fmt.Sprintf("README.md:%d: go %s: %v\n%s", s.b.line, strings.Join(args, " "), err, out)}
		}
		problems = append(problems, found...)
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "\n\t"))
	}
	logf("Go snippets: %d complete files built as they are, %d fragments type-checked", complete, len(snippets)-complete)
	return nil
}

// compilerLine matches a compiler or vet diagnostic.
var compilerLine = regexp.MustCompile(`([^\s:]+\.go):(\d+):(?:(\d+):)? (.*)$`)

// compilerProblems returns the diagnostics of out about s's file that are
// not forgiven, by README line.
func compilerProblems(s snippet, out string) []string {
	var found []string
	for line := range strings.Lines(out) {
		m := compilerLine.FindStringSubmatch(strings.TrimRight(line, "\n"))
		if m == nil || filepath.Base(m[1]) != s.file {
			continue
		}
		msg := m[4]
		if !s.complete && isForgiven(msg) {
			continue
		}
		n, _ := strconv.Atoi(m[2])
		found = append(found, fmt.Sprintf("README.md:%d: %s", s.b.line+n-s.header-1, msg))
	}
	return found
}

// fragmentOnlyForgiven reports whether the diagnostics in out are all
// forgiven ones about s's file.
func fragmentOnlyForgiven(s snippet, out string) bool {
	n := 0
	for line := range strings.Lines(out) {
		m := compilerLine.FindStringSubmatch(strings.TrimRight(line, "\n"))
		if m == nil {
			continue
		}
		if filepath.Base(m[1]) != s.file || !isForgiven(m[4]) {
			return false
		}
		n++
	}
	return n > 0
}

func isForgiven(msg string) bool {
	for _, re := range forgiven {
		if re.MatchString(msg) {
			return true
		}
	}
	return false
}

// writeSnippet writes block b into its own package directory of the
// snippets module: as it is when it starts with a package clause, or as a
// fragment with imports for the package names it uses, inside a function
// when it holds statements.
func writeSnippet(mod, name string, b block, modPath string) (snippet, error) {
	s := snippet{b: b, dir: name, file: "snippet.go"}
	var src string
	if startsWithPackage(b.code) {
		s.complete = true
		src = b.code
		if strings.Contains(b.code, "func Test") && strings.Contains(b.code, `"testing"`) {
			s.file = "snippet_test.go"
		}
	} else {
		var err error
		src, s.header, err = fragmentSource(name, b, modPath)
		if err != nil {
			return s, err
		}
	}
	dir := filepath.Join(mod, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return s, err
	}
	return s, os.WriteFile(filepath.Join(dir, s.file), []byte(src), 0o644)
}

// startsWithPackage reports whether code's first line that is neither blank
// nor a comment is a package clause.
func startsWithPackage(code string) bool {
	for line := range strings.Lines(code) {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "//") {
			continue
		}
		return strings.HasPrefix(t, "package ")
	}
	return false
}

// fragmentSource returns a Go file for a fragment in package pkg, and how
// many lines come before the fragment's first. Top-level declarations stay
// at the top level; statements go into a function that may return an
// error. A fragment that does not parse either way is reported by its
// README line.
func fragmentSource(pkg string, b block, modPath string) (string, int, error) {
	fset := token.NewFileSet()
	body := "func _() error {\n" + b.code + "return nil\n}\n"
	wrapped := true
	f, err := parser.ParseFile(fset, "", "package p\n"+b.code, parser.SkipObjectResolution)
	if err == nil {
		body, wrapped = b.code, false
	} else if f, err = parser.ParseFile(fset, "", "package p\n"+body, parser.SkipObjectResolution); err != nil {
		var list scanner.ErrorList
		if errors.As(err, &list) && len(list) > 0 {
			// Line 1 is the package clause, line 2 the func line.
			return "", 0, fmt.Errorf("README.md:%d: %s", b.line+list[0].Pos.Line-3, list[0].Msg)
		}
		return "", 0, fmt.Errorf("README.md:%d: %v", b.line, err)
	}

	used := map[string]bool{}
	ast.Inspect(f, func(n ast.Node) bool {
		if sel, ok := n.(*ast.SelectorExpr); ok {
			if id, ok := sel.X.(*ast.Ident); ok {
				used[id.Name] = true
			}
		}
		return true
	})
	var head strings.Builder
	head.WriteString("package " + pkg + "\n\nimport (\n")
	for _, name := range slices.Sorted(maps.Keys(used)) {
		if path, ok := packageNames[name]; ok {
			fmt.Fprintf(&head, "\t%s %q\n", name, strings.ReplaceAll(path, "{mod}", modPath))
		}
	}
	head.WriteString(")\n\n")
	header := strings.Count(head.String(), "\n")
	if wrapped {
		header++ // the func line
	}
	return head.String() + body, header, nil
}

// goDirective returns the go version a go.mod file names.
func goDirective(gomod string) (string, error) {
	b, err := os.ReadFile(gomod)
	if err != nil {
		return "", err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "go "); ok {
			return strings.TrimSpace(v), nil
		}
	}
	return "", errors.New(gomod + ": no go line")
}

// workspace returns a go.work that uses mod and every module the clone's
// go.work uses (or the clone's root module when it has none).
func workspace(clone, mod string) (string, error) {
	dirs := []string{"."}
	version := ""
	if b, err := os.ReadFile(filepath.Join(clone, "go.work")); err == nil {
		dirs = nil
		inUse := false
		for line := range strings.Lines(string(b)) {
			t := strings.TrimSpace(line)
			switch {
			case strings.HasPrefix(t, "go "):
				version = strings.TrimSpace(t[3:])
			case t == "use (":
				inUse = true
			case inUse && t == ")":
				inUse = false
			case inUse && t != "":
				dirs = append(dirs, t)
			case strings.HasPrefix(t, "use "):
				dirs = append(dirs, strings.TrimSpace(t[4:]))
			}
		}
	} else if !os.IsNotExist(err) {
		return "", err
	}
	if version == "" {
		v, err := goDirective(filepath.Join(clone, "go.mod"))
		if err != nil {
			return "", err
		}
		version = v
	}
	var w strings.Builder
	fmt.Fprintf(&w, "go %s\n\nuse (\n\t%s\n", version, mod)
	for _, d := range dirs {
		fmt.Fprintf(&w, "\t%s\n", filepath.Join(clone, d))
	}
	w.WriteString(")\n")
	return w.String(), nil
}

// checkJSSnippets checks the syntax of the README's JavaScript blocks with
// node --check, as ES modules (the README's client code uses top-level
// await). It returns a note instead when node is missing outside CI, or
// when there is nothing to check.
func checkJSSnippets(ctx context.Context, tmp string, blocks []block) (string, error) {
	var js []block
	for _, b := range blocks {
		if b.lang == "js" || b.lang == "javascript" || b.lang == "mjs" {
			js = append(js, b)
		}
	}
	if len(js) == 0 {
		return "the README has no JavaScript blocks", nil
	}
	if _, err := exec.LookPath("node"); err != nil {
		if os.Getenv("CI") != "" {
			return "", errors.New("node is required in CI (apt-get install nodejs npm)")
		}
		return "node not found (apt-get install nodejs npm)", nil
	}
	var problems []string
	for i, b := range js {
		file := filepath.Join(tmp, fmt.Sprintf("snippet%d.mjs", i+1))
		if err := os.WriteFile(file, []byte(b.code), 0o644); err != nil {
			return "", err
		}
		if out, err := output(ctx, tmp, newcomerEnv(), "node", "--check", file); err != nil {
			problems = append(problems, fmt.Sprintf("README.md:%d: %s", b.line, out))
		}
	}
	if len(problems) > 0 {
		return "", errors.New(strings.Join(problems, "\n\t"))
	}
	return "", nil
}
