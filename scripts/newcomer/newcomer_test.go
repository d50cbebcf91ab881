package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The whole check runs as the last step of make test (make
// test-newcomer), after the other tests, so that its clone, npm and
// builds do not compete with their timing; these tests check its parts.

// need skips the test when a tool is missing, except in CI, where it fails.
func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is required in CI", tool)
			}
			t.Skipf("%s not found: install it (apt-get install %s)", tool, tool)
		}
	}
}

const fixture = "# A project\n" +
	"\n" +
	"```\n" +
	"go get example.com/mod\n" +
	"```\n" +
	"\n" +
	"```sh\n" +
	"make chat   # run it (ADDR=127.0.0.1:8080 make chat to move it)\n" +
	"# a comment line\n" +
	"ADDR=127.0.0.1:9 make test\n" +
	"```\n" +
	"\n" +
	"```\n" +
	"a tree\n" +
	"└── listing\n" +
	"```\n" +
	"\n" +
	"````go\n" +
	"x := 1\n" +
	"```\n" +
	"````\n" +
	"  ~~~js\n" +
	"await f();\n" +
	"  ~~~\n"

func TestParseBlocks(t *testing.T) {
	t.Parallel()
	blocks := parseBlocks(fixture)
	var got []string
	for _, b := range blocks {
		got = append(got, b.lang+"@"+strconv.Itoa(b.line)+":"+strings.ReplaceAll(b.code, "\n", "|"))
	}
	want := []string{
		"@4:go get example.com/mod|",
		"sh@8:make chat   # run it (ADDR=127.0.0.1:8080 make chat to move it)|# a comment line|ADDR=127.0.0.1:9 make test|",
		"@14:a tree|└── listing|",
		"go@19:x := 1|```|",
		"js@23:await f();|",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("blocks:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestReadmeCommands(t *testing.T) {
	t.Parallel()
	cmds, err := readmeCommands(parseBlocks(fixture))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range cmds {
		got = append(got, strings.Join(c.env, ",")+"|"+c.program+"|"+strings.Join(c.args, ",")+"|"+strconv.Itoa(c.readme))
	}
	want := "|go get|example.com/mod|4\n|make chat||8\nADDR=127.0.0.1:9|make test||10"
	if strings.Join(got, "\n") != want {
		t.Errorf("commands:\n%s\nwant:\n%s", strings.Join(got, "\n"), want)
	}

	// A new instruction the check does not know fails it, by line.
	_, err = readmeCommands(parseBlocks("```sh\nmake chat\nnpm run dev\n```\n"))
	if err == nil || !strings.Contains(err.Error(), "README.md:3: npm run dev") {
		t.Errorf("an unknown command: err = %v", err)
	}
	if _, err := readmeCommands(parseBlocks("no blocks\n")); err == nil {
		t.Error("a README without commands passed")
	}
}

func TestCheckGoGet(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		line string
		ok   bool
	}{
		{"go get example.com/mod", true},
		{"go get example.com/mod@latest", true},
		{"go get example.com/mod/client", true},
		{"go get example.com/other", false},
		{"go get example.com/module", false},
		{"go get", false},
	} {
		c := parseCommand(tc.line, 1)
		if err := checkGoGet(c, "example.com/mod"); (err == nil) != tc.ok {
			t.Errorf("%s: err = %v, want ok=%v", tc.line, err, tc.ok)
		}
	}
}

func TestLogValue(t *testing.T) {
	t.Parallel()
	line := `time=2026-01-01T00:00:00Z level=INFO msg="chat listening" url=http://127.0.0.1:5000/ hub=/chathub note="a \"quoted\" value"`
	for key, want := range map[string]string{
		"url": "http://127.0.0.1:5000/", "hub": "/chathub", "msg": "chat listening", "note": `a "quoted" value`, "missing": "",
	} {
		if got := logValue(line, key); got != want {
			t.Errorf("%s = %q, want %q", key, got, want)
		}
	}
}

// TestGoSnippets builds README blocks against this repository: drift in
// the API a fragment uses fails with the README line, while what a
// fragment leaves to the reader does not.
func TestGoSnippets(t *testing.T) {
	t.Parallel()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	mod, err := modulePath(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	build := func(t *testing.T, readme string) error {
		t.Helper()
		return checkGoSnippets(t.Context(), t.TempDir(), root, mod, parseBlocks(readme), t.Logf)
	}

	good := "intro\n" +
		"```go\n" +
		"hub, err := signalhub.New(&signalhub.Options{Authenticate: auth})\n" +
		"if err != nil {\n" +
		"\treturn err\n" +
		"}\n" +
		"hub.Mount(http.NewServeMux(), \"/chathub\")\n" +
		"unused := ctx\n" +
		"```\n" +
		"```go\n" +
		"func TestX(t *testing.T) {\n" +
		"\tsrv := hubtest.NewServer(t, hubtest.NewHub(t, nil))\n" +
		"\tsrv.Connect(\"alice\").ExpectNothing()\n" +
		"}\n" +
		"```\n" +
		"```go\n" +
		"// A complete program.\n" +
		"package main\n" +
		"\n" +
		"import \"github.com/signalhub/signalhub\"\n" +
		"\n" +
		"func main() { _, _ = signalhub.New(nil) }\n" +
		"```\n"
	if err := build(t, good); err != nil {
		t.Errorf("good snippets failed: %v", err)
	}

	for _, tc := range []struct {
		name, readme, want string
	}{
		{"a renamed method", "a\nb\n```go\nhub, _ := signalhub.New(nil)\nhub.Mountt(mux, \"/x\")\n```\n", "README.md:5: hub.Mountt undefined"},
		{"a renamed option", "```go\n_, _ = signalhub.New(&signalhub.Options{Method: nil})\n```\n", "README.md:2: unknown field Method"},
		{"a wrong argument", "```go\nfunc f(h *signalhub.Hub) error {\n\treturn h.SendToUser(\"alice\", \"M\")\n}\n```\n", "README.md:3: not enough arguments in call to h.SendToUser"},
		{"a missing package member", "```go\nx := signalhub.NoSuchThing\n```\n", "README.md:2: undefined: signalhub.NoSuchThing"},
		{"a syntax error", "```go\nx := (\n```\n", "README.md:3: expected operand"},
		{"a broken complete file", "```go\npackage main\n\nfunc main() { missing() }\n```\n", "README.md:4: undefined: missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := build(t, tc.readme)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestProcWaitForAndInterrupt(t *testing.T) {
	t.Parallel()
	need(t, "sh")
	p, err := startProc("", os.Environ(), "sh", "-c", "echo starting; echo 'level=INFO msg=ready'; exec sleep 600")
	if err != nil {
		t.Fatal(err)
	}
	line, err := p.waitFor(t.Context(), "msg=ready")
	if err != nil || line != "level=INFO msg=ready" {
		t.Fatalf("waitFor = %q, %v", line, err)
	}
	if !p.has("starting") || p.has("nothing like this") {
		t.Errorf("has: output %s", p.output())
	}
	if err := p.interrupt(time.Minute); err != nil {
		t.Errorf("interrupt: %v", err)
	}

	// A process that ends without the line fails the wait at once.
	p, err = startProc("", os.Environ(), "sh", "-c", "echo only this; exit 3")
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.waitFor(t.Context(), "never printed")
	if err == nil || !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), "only this") {
		t.Errorf("waitFor on an ended process: %v", err)
	}
}
