package route_test

import (
	"fmt"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/route"
)

func ExampleTable_Match() {
	tab, err := route.Compile([]string{
		"POST /repos/{owner}/{repo}/issues -> issues.create repo:{owner}/{repo}",
		"GET /files/{path...} -> files.read file:{path}",
	})
	if err != nil {
		panic(err)
	}
	m, _ := tab.Match("POST", "/repos/wardenhq/warden/issues")
	fmt.Println(m.Action, m.Resource, m.Path)

	m, _ = tab.Match("GET", "/files/docs/r%c3%a9sum%c3%a9.md")
	fmt.Println(m.Action, m.Resource, m.Path)

	_, err = tab.Match("GET", "/files/docs/..%2f..%2fetc/passwd")
	fmt.Println(warden.ErrorCode(err), err)

	_, err = tab.Match("HEAD", "/files/docs/a.md")
	fmt.Println(warden.ErrorCode(err), err)
	// Output:
	// issues.create repo:wardenhq/warden /repos/wardenhq/warden/issues
	// files.read file:docs/résumé.md /files/docs/r%C3%A9sum%C3%A9.md
	// invalid request path: segment 3 "..%2f..%2fetc": encoded slash (%2F) is not allowed
	// forbidden no route of the tool matches the request
}
