package route

import (
	"fmt"
	"testing"
)

// benchRoutes are 50 routes in the style of a large REST API (GitHub's).
var benchRoutes = func() []string {
	routes := []string{
		"GET /user -> user.read",
		"PATCH /user -> user.update",
		"GET /user/repos -> user.repos.list",
		"POST /user/repos -> user.repos.create",
		"GET /users/{user} -> users.read user:{user}",
		"GET /users/{user}/repos -> users.repos.list user:{user}",
		"GET /orgs/{org} -> orgs.read org:{org}",
		"GET /orgs/{org}/repos -> orgs.repos.list org:{org}",
		"POST /orgs/{org}/repos -> orgs.repos.create org:{org}",
		"GET /orgs/{org}/members -> orgs.members.list org:{org}",
		"GET /repos/{owner}/{repo} -> repos.read repo:{owner}/{repo}",
		"PATCH /repos/{owner}/{repo} -> repos.update repo:{owner}/{repo}",
		"DELETE /repos/{owner}/{repo} -> repos.delete repo:{owner}/{repo}",
		"GET /repos/{owner}/{repo}/contents/{path...} -> contents.read repo:{owner}/{repo}/{path}",
		"PUT /repos/{owner}/{repo}/contents/{path...} -> contents.write repo:{owner}/{repo}/{path}",
		"GET /repos/{owner}/{repo}/branches -> branches.list repo:{owner}/{repo}",
		"GET /repos/{owner}/{repo}/branches/{branch} -> branches.read repo:{owner}/{repo}",
		"GET /repos/{owner}/{repo}/commits -> commits.list repo:{owner}/{repo}",
		"GET /repos/{owner}/{repo}/commits/{sha} -> commits.read repo:{owner}/{repo}",
		"GET /repos/{owner}/{repo}/releases -> releases.list repo:{owner}/{repo}",
		"POST /repos/{owner}/{repo}/releases -> releases.create repo:{owner}/{repo}",
		"GET /repos/{owner}/{repo}/releases/latest -> releases.latest repo:{owner}/{repo}",
		"GET /repos/{owner}/{repo}/releases/{id} -> releases.read repo:{owner}/{repo}",
		"GET /repos/{owner}/{repo}/hooks -> hooks.list repo:{owner}/{repo}",
		"POST /repos/{owner}/{repo}/hooks -> hooks.create repo:{owner}/{repo}",
		"* /repos/{owner}/{repo}/hooks/{id} -> hooks.any repo:{owner}/{repo}",
		"GET /repos/{owner}/{repo}/actions/runs -> actions.runs.list repo:{owner}/{repo}",
		"GET /repos/{owner}/{repo}/actions/runs/{id} -> actions.runs.read repo:{owner}/{repo}",
		"POST /repos/{owner}/{repo}/actions/runs/{id}/rerun -> actions.runs.rerun repo:{owner}/{repo}",
		"GET /repos/{owner}/{repo}/collaborators -> collaborators.list repo:{owner}/{repo}",
		"PUT /repos/{owner}/{repo}/collaborators/{user} -> collaborators.add repo:{owner}/{repo}",
		"GET /search/code -> search.code",
		"GET /search/issues -> search.issues",
		"GET /gists -> gists.list",
		"POST /gists -> gists.create",
		"GET /gists/{id} -> gists.read gist:{id}",
		"GET /notifications -> notifications.list",
	}
	for _, what := range []string{"issues", "pulls", "labels", "milestones", "comments", "deployments", "environments"} {
		routes = append(routes, fmt.Sprintf("GET /repos/{owner}/{repo}/%s -> %s.list repo:{owner}/{repo}", what, what))
		routes = append(routes, fmt.Sprintf("POST /repos/{owner}/{repo}/%s -> %s.create repo:{owner}/{repo}", what, what))
	}
	return routes
}()

// BenchmarkMatch matches requests typical of an agent against a 50-route table.
func BenchmarkMatch(b *testing.B) {
	tab, err := Compile(benchRoutes)
	if err != nil {
		b.Fatal(err)
	}
	for _, bm := range []struct{ name, method, path string }{
		{"literal", "GET", "/user"},
		{"vars", "POST", "/repos/wardenhq/warden/issues"},
		{"deep", "POST", "/repos/wardenhq/warden/actions/runs/12345/rerun"},
		{"wildcard", "GET", "/repos/wardenhq/warden/contents/internal/route/route.go"},
		{"escaped", "GET", "/repos/wardenhq/warden/contents/docs/r%C3%A9sum%C3%A9%20v2.md"},
		{"nomatch", "GET", "/repos/wardenhq/warden/secrets"},
		{"invalid", "GET", "/repos/wardenhq/warden/contents/%2e%2e/secrets"},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				tab.Match(bm.method, bm.path)
			}
		})
	}
}
