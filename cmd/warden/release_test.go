package main_test

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"

	"golang.org/x/mod/modfile"
)

// buildLine is one `go build` command line: its environment, flags and package.
type buildLine struct {
	env     []string // CGO_ENABLED=0
	flags   []string // -trimpath, -ldflags=…
	pkg     string
	ldflags string
}

// parseBuild reads `[VAR=v …] go build FLAGS [-o OUT] PKG` as a shell would split it.
func parseBuild(t *testing.T, line string) buildLine {
	t.Helper()
	var words []string
	var cur strings.Builder
	inQuote := false
	for _, r := range strings.TrimSpace(line) + " " {
		switch {
		case r == '"':
			inQuote = !inQuote
		case r == ' ' && !inQuote:
			if cur.Len() > 0 {
				words = append(words, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteRune(r)
		}
	}
	var b buildLine
	i := 0
	for ; i < len(words) && strings.Contains(words[i], "=") && !strings.HasPrefix(words[i], "-"); i++ {
		if !strings.HasPrefix(words[i], "GOOS=") && !strings.HasPrefix(words[i], "GOARCH=") {
			b.env = append(b.env, words[i])
		}
	}
	if i+1 >= len(words) || words[i+1] != "build" {
		t.Fatalf("not a go build line: %q", line)
	}
	for i += 2; i < len(words); i++ {
		switch w := words[i]; {
		case w == "-o":
			i++
		case strings.HasPrefix(w, "-ldflags="):
			b.ldflags = strings.TrimPrefix(w, "-ldflags=")
			b.flags = append(b.flags, "-ldflags")
		case strings.HasPrefix(w, "-"):
			b.flags = append(b.flags, w)
		default:
			b.pkg = w
		}
	}
	return b
}

// TestReleaseBuild holds the Dockerfile and `make release` to one build: the same package with the
// same flags and stamps, CGO off; the binary those flags make is static and prints the stamped
// version; the image runs it as a non-root user on 0.0.0.0:8787 with its data on a volume; and
// `go install` of the command works from the module (no replace directive). `docker build` itself
// is not run here: these machines have no Docker engine.
func TestReleaseBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds warden twice")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	const version, commit = "v9.9.9-test", "0123456789ab"

	// make release: every platform, with the build line `make build` runs.
	mk := func(target string) string {
		cmd := exec.Command("make", "-n", "-s", target, "VERSION="+version, "COMMIT="+commit, "GO=go")
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("make -n %s: %v\n%s", target, err, out)
		}
		return string(out)
	}
	release := mk("release")
	for _, p := range []string{"linux/amd64", "linux/arm64", "darwin/amd64", "darwin/arm64"} {
		if !strings.Contains(release, p) {
			t.Errorf("make release does not build %s:\n%s", p, release)
		}
	}
	if !strings.Contains(release, "SHA256SUMS") {
		t.Errorf("make release writes no SHA256SUMS:\n%s", release)
	}
	buildCmd := strings.TrimSpace(mk("build"))
	makeBuild := parseBuild(t, buildCmd)
	inRelease := regexp.MustCompile(`GOOS=\S+ GOARCH=\S+ (.*) -o dist/\S+ (\S+) \|\|`).FindStringSubmatch(release)
	if inRelease == nil || parseBuild(t, inRelease[1]+" "+inRelease[2]).ldflags != makeBuild.ldflags {
		t.Fatalf("make release and make build build differently:\n%s\n%s", release, buildCmd)
	}

	// The Dockerfile's build, with its build arguments as make passes them.
	df, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(df), "\\\n", " ")
	var dockerBuild buildLine
	var stages [][]string // each stage's instructions
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "FROM ") {
			stages = append(stages, nil)
		}
		if len(stages) > 0 {
			stages[len(stages)-1] = append(stages[len(stages)-1], line)
		}
		if run, ok := strings.CutPrefix(line, "RUN "); ok && strings.Contains(run, "go build") {
			run, _, _ = strings.Cut(run, "&&")
			run = strings.NewReplacer("${VERSION}", version, "${COMMIT}", commit).Replace(run)
			dockerBuild = parseBuild(t, run)
		}
	}
	if dockerBuild.pkg == "" {
		t.Fatal("the Dockerfile has no go build")
	}
	if dockerBuild.pkg != makeBuild.pkg || dockerBuild.ldflags != makeBuild.ldflags ||
		!slices.Equal(dockerBuild.flags, makeBuild.flags) || !slices.Equal(dockerBuild.env, makeBuild.env) {
		t.Fatalf("the Dockerfile builds %+v, make release %+v", dockerBuild, makeBuild)
	}
	if !slices.Contains(makeBuild.env, "CGO_ENABLED=0") || !slices.Contains(makeBuild.flags, "-trimpath") {
		t.Fatalf("the release build is not CGO_ENABLED=0 -trimpath: %+v", makeBuild)
	}
	if len(stages) < 2 {
		t.Fatal("the Dockerfile is not multi-stage")
	}
	final := stages[len(stages)-1]
	if !strings.Contains(final[0], "distroless/static") && !strings.Contains(final[0], "scratch") {
		t.Errorf("the final stage is %q, want distroless/static or scratch", final[0])
	}
	user := ""
	for _, in := range final {
		if u, ok := strings.CutPrefix(in, "USER "); ok {
			user = u
		}
	}
	if user != "65532:65532" && user != "65532" && user != "nonroot" {
		t.Errorf("the image runs as %q, want the non-root user 65532", user)
	}
	for _, want := range []string{"EXPOSE 8787", "VOLUME /var/lib/warden", `CMD ["serve", "--listen", "0.0.0.0:8787"]`} {
		if !slices.Contains(final, want) {
			t.Errorf("the final stage lacks %q", want)
		}
	}

	// The binary those flags make: static, stamped.
	if runtime.GOOS != "linux" {
		t.Skip("the static check reads ELF: linux only")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "warden")
	args := append([]string{"build"}, dockerBuild.flags...)
	args[slices.Index(args, "-ldflags")] = "-ldflags=" + dockerBuild.ldflags
	build := exec.Command("go", append(args, "-o", bin, dockerBuild.pkg)...)
	build.Dir = root
	build.Env = append(os.Environ(), dockerBuild.env...)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go %v: %v\n%s", args, err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary asks for a dynamic loader (PT_INTERP)")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the binary needs shared libraries: %v", libs)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "warden "+version+" (commit "+commit+", go") {
		t.Fatalf("version: %v %q", err, out)
	}

	// go install of the command, from the module as it is: no replace directive in the way.
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	mf, err := modfile.Parse("go.mod", mod, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(mf.Replace) > 0 || mf.Module.Mod.Path != "github.com/wardenhq/warden" {
		t.Fatalf("go.mod: module %s with %d replace directives; go install …/cmd/warden@version would fail", mf.Module.Mod.Path, len(mf.Replace))
	}
	gobin := filepath.Join(dir, "gobin")
	install := exec.Command("go", "install", "./cmd/warden")
	install.Dir = root
	install.Env = append(os.Environ(), "GOBIN="+gobin)
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("go install ./cmd/warden: %v\n%s", err, out)
	}
	if out, err := exec.Command(filepath.Join(gobin, "warden"), "version").CombinedOutput(); err != nil || !strings.HasPrefix(string(out), "warden ") {
		t.Fatalf("the installed warden: %v %q", err, out)
	}
}
