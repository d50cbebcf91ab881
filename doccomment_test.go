package signalhub_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestExportedNamesHaveDocComments reads the source of every package of
// this module and of the modules nested in it (the backplane engines,
// otelhub, examples, bench) and fails naming each exported identifier that has no
// doc comment: packages, types, functions, methods of exported types,
// constants, variables, and the exported fields and interface methods of
// exported types. A doc comment of a grouped const or var declaration covers the
// names of the group; a field's or constant's line comment counts as its
// doc.
func TestExportedNamesHaveDocComments(t *testing.T) {
	t.Parallel()
	dirs, err := goPackageDirs(".")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(dirs, ".") || !slices.Contains(dirs, filepath.Join("backplane", "redis")) || !slices.Contains(dirs, "otelhub") {
		t.Fatalf("the module's packages were not found from %s: %v", mustGetwd(t), dirs)
	}
	var missing []string
	for _, dir := range dirs {
		m, err := undocumented(dir)
		if err != nil {
			t.Fatal(err)
		}
		missing = append(missing, m...)
	}
	if len(missing) > 0 {
		t.Errorf("%d exported names have no doc comment:\n\t%s", len(missing), strings.Join(missing, "\n\t"))
	}
}

// TestUndocumentedFindsEveryKind shows that the check names each kind of
// undocumented exported identifier and leaves documented and unexported
// ones alone.
func TestUndocumentedFindsEveryKind(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src := `package p

type Bare struct {
	Field    int
	Noted    int // Noted has a line comment.
	// Documented has a doc comment.
	Documented int
	hidden     int
}

// Iface is documented.
type Iface interface {
	Method()
	// Fine is documented.
	Fine()
}

func Func() {}

func (Bare) Method() {}

// Helper is documented.
func Helper() {}

func (hidden) Exported() {}

type hidden struct{}

const Const = 1

// Group is documented.
const (
	GroupA = 1
	GroupB = 2
)

var (
	Var = 1
	// DocVar is documented.
	DocVar = 2
	lower  = 3
)

type (
	Grouped int
	// GroupedDoc is documented.
	GroupedDoc int
)
`
	if err := os.WriteFile(filepath.Join(dir, "p.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "p_test.go"), []byte("package p\n\nfunc TestNothing() {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := undocumented(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range got {
		got[i] = m[strings.LastIndex(m, " ")+1:]
	}
	want := []string{"Bare", "Bare.Field", "Iface.Method", "Func", "Bare.Method", "Const", "Var", "Grouped", "p"}
	if !slices.Equal(got, want) {
		t.Errorf("undocumented names: got %v, want %v", got, want)
	}
}

func mustGetwd(t *testing.T) string {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return wd
}

// goPackageDirs returns every directory under root that holds non-test Go
// files, skipping node_modules, testdata and hidden directories.
func goPackageDirs(root string) ([]string, error) {
	seen := map[string]bool{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != root && (name == "node_modules" || name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
			seen[filepath.Dir(path)] = true
		}
		return nil
	})
	return slices.Sorted(maps.Keys(seen)), err
}

// undocumented returns "file:line: kind Name" for every exported name
// without a doc comment in the non-test Go files of dir, in source order.
func undocumented(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	fset := token.NewFileSet()
	var out []string
	var pkgName string
	pkgDoc := false
	report := func(pos token.Pos, kind, name string) {
		p := fset.Position(pos)
		out = append(out, fmt.Sprintf("%s:%d: %s %s", p.Filename, p.Line, kind, name))
	}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.ParseComments|parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		if ast.IsGenerated(f) {
			continue
		}
		pkgName = f.Name.Name
		pkgDoc = pkgDoc || f.Doc != nil
		for _, decl := range f.Decls {
			switch d := decl.(type) {
			case *ast.FuncDecl:
				checkFunc(d, report)
			case *ast.GenDecl:
				checkGenDecl(d, report)
			}
		}
	}
	if pkgName != "" && !pkgDoc {
		out = append(out, fmt.Sprintf("%s: package %s", dir, pkgName))
	}
	return out, nil
}

func checkFunc(d *ast.FuncDecl, report func(token.Pos, string, string)) {
	if !d.Name.IsExported() || d.Doc != nil {
		return
	}
	if d.Recv == nil {
		report(d.Pos(), "func", d.Name.Name)
		return
	}
	recv := receiverName(d.Recv.List[0].Type)
	if ast.IsExported(recv) {
		report(d.Pos(), "method", recv+"."+d.Name.Name)
	}
}

// receiverName returns the base type name of a method's receiver.
func receiverName(e ast.Expr) string {
	for {
		switch x := e.(type) {
		case *ast.StarExpr:
			e = x.X
		case *ast.IndexExpr:
			e = x.X
		case *ast.IndexListExpr:
			e = x.X
		case *ast.ParenExpr:
			e = x.X
		case *ast.Ident:
			return x.Name
		default:
			return ""
		}
	}
}

func checkGenDecl(d *ast.GenDecl, report func(token.Pos, string, string)) {
	grouped := d.Lparen.IsValid()
	for _, spec := range d.Specs {
		switch s := spec.(type) {
		case *ast.TypeSpec:
			if !s.Name.IsExported() {
				continue
			}
			// A type's doc is its own; a group's doc covers a lone type only.
			if s.Doc == nil && s.Comment == nil && (grouped || d.Doc == nil) {
				report(s.Pos(), "type", s.Name.Name)
			}
			checkMembers(s, report)
		case *ast.ValueSpec:
			if s.Doc != nil || s.Comment != nil || d.Doc != nil {
				continue
			}
			kind := "var"
			if d.Tok == token.CONST {
				kind = "const"
			}
			for _, n := range s.Names {
				if n.IsExported() {
					report(n.Pos(), kind, n.Name)
				}
			}
		}
	}
}

// checkMembers reports the undocumented exported fields of a struct type
// and methods of an interface type. Embedded fields are skipped.
func checkMembers(s *ast.TypeSpec, report func(token.Pos, string, string)) {
	var fields *ast.FieldList
	kind := "field"
	switch t := s.Type.(type) {
	case *ast.StructType:
		fields = t.Fields
	case *ast.InterfaceType:
		fields, kind = t.Methods, "method"
	default:
		return
	}
	for _, f := range fields.List {
		if f.Doc != nil || f.Comment != nil {
			continue
		}
		for _, n := range f.Names {
			if n.IsExported() {
				report(n.Pos(), kind, s.Name.Name+"."+n.Name)
			}
		}
	}
}
