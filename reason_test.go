package warden_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestReasonsAreDocumented keeps the reason codes and docs/audit.md's list of them in step:
// every Reason constant of the domain package has its row under "### Reasons", and every row
// there is a constant. SIEM rules are written from that list.
func TestReasonsAreDocumented(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "reason.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	code := map[string]string{} // value → constant
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !strings.HasPrefix(name.Name, "Reason") || !ok || lit.Kind != token.STRING {
					t.Errorf("reason.go: %s is not a Reason constant with a string value", name.Name)
					continue
				}
				v, _ := strconv.Unquote(lit.Value)
				if other, dup := code[v]; dup {
					t.Errorf("reason.go: %s and %s are both %q", other, name.Name, v)
				}
				code[v] = name.Name
			}
		}
	}
	if len(code) == 0 {
		t.Fatal("reason.go defines no reasons")
	}

	doc, err := os.ReadFile("docs/audit.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "\n### Reasons\n")
	if !ok {
		t.Fatal(`docs/audit.md has no "### Reasons" section`)
	}
	if end := strings.Index(section, "\n#"); end >= 0 {
		section = section[:end]
	}
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z_]+)` \\|").FindAllStringSubmatch(section, -1) {
		documented[m[1]] = true
		if _, ok := code[m[1]]; !ok {
			t.Errorf("docs/audit.md lists the reason %q, which reason.go does not define", m[1])
		}
	}
	for v, name := range code {
		if !documented[v] {
			t.Errorf("warden.%s (%q) has no row under docs/audit.md's Reasons", name, v)
		}
	}
}
