package check

// A small Dockerfile reader and a stand-in builder for what BEDS's
// Dockerfiles do, for a machine with no Docker engine. It knows the
// instructions those files use and fails on any other, so a Dockerfile
// change that this stand-in cannot reproduce faithfully fails the test
// instead of passing untested.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/mattn/go-shellwords"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// instruction is one Dockerfile instruction.
type instruction struct {
	Line  int
	Cmd   string            // upper case: FROM, RUN, COPY, ...
	Flags map[string]string // --from=build -> from: build
	Args  string            // the rest, continuation lines joined
	Exec  []string          // Args as a JSON array (exec form), if it is one
}

// stage is one FROM and what follows it.
type stage struct {
	Name, Image string
	Platform    string
	Instr       []instruction
}

type dockerfile struct {
	Path   string
	Stages []*stage
}

// final is the last stage: the image.
func (d *dockerfile) final() *stage { return d.Stages[len(d.Stages)-1] }

// all returns the stage's instructions named cmd.
func (s *stage) all(cmd string) []instruction {
	var out []instruction
	for _, in := range s.Instr {
		if in.Cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// env returns the stage's ENV variables (later ones win).
func (s *stage) env(t testing.TB) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, in := range s.all("ENV") {
		maps.Copy(m, parseKV(t, in))
	}
	return m
}

// parseKV reads the key=value pairs of an ENV, LABEL or ARG instruction.
func parseKV(t testing.TB, in instruction) map[string]string {
	t.Helper()
	words, err := shellwords.Parse(in.Args)
	if err != nil {
		t.Fatalf("line %d: %s %s: %v", in.Line, in.Cmd, in.Args, err)
	}
	m := map[string]string{}
	if len(words) == 2 && !strings.Contains(words[0], "=") && in.Cmd == "ENV" {
		m[words[0]] = words[1] // legacy "ENV KEY value"
		return m
	}
	for _, w := range words {
		k, v, _ := strings.Cut(w, "=")
		m[k] = v
	}
	return m
}

var knownInstructions = map[string]bool{
	"FROM": true, "ARG": true, "ENV": true, "WORKDIR": true, "COPY": true, "RUN": true, "LABEL": true,
	"USER": true, "EXPOSE": true, "HEALTHCHECK": true, "ENTRYPOINT": true, "CMD": true,
}

// parseDockerfile reads a Dockerfile: comments, parser directives,
// backslash continuations, flags and the exec (JSON) form.
func parseDockerfile(t testing.TB, file string) *dockerfile {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d := &dockerfile{Path: file}
	sc := bufio.NewScanner(f)
	n, start := 0, 0
	var cur strings.Builder
	flush := func() {
		text := strings.TrimSpace(cur.String())
		cur.Reset()
		if text == "" {
			return
		}
		cmd, rest, _ := strings.Cut(text, " ")
		in := instruction{Line: start, Cmd: strings.ToUpper(cmd), Flags: map[string]string{}}
		rest = strings.TrimSpace(rest)
		for strings.HasPrefix(rest, "--") {
			flag, after, _ := strings.Cut(rest, " ")
			k, v, _ := strings.Cut(strings.TrimPrefix(flag, "--"), "=")
			in.Flags[k] = v
			rest = strings.TrimSpace(after)
		}
		in.Args = rest
		if strings.HasPrefix(rest, "[") {
			var ex []string
			if err := json.Unmarshal([]byte(rest), &ex); err == nil {
				in.Exec = ex
			}
		}
		if !knownInstructions[in.Cmd] {
			t.Fatalf("%s:%d: instruction %s is not one deploy/check can reproduce; teach dockerfile_parse_test.go", file, in.Line, in.Cmd)
		}
		if in.Cmd == "FROM" {
			words := strings.Fields(rest)
			s := &stage{Image: words[0], Platform: in.Flags["platform"]}
			if len(words) == 3 && strings.EqualFold(words[1], "AS") {
				s.Name = words[2]
			} else if len(words) != 1 {
				t.Fatalf("%s:%d: FROM %s", file, in.Line, rest)
			}
			d.Stages = append(d.Stages, s)
		}
		if len(d.Stages) == 0 {
			if in.Cmd != "ARG" {
				t.Fatalf("%s:%d: %s before FROM", file, in.Line, in.Cmd)
			}
			return
		}
		st := d.Stages[len(d.Stages)-1]
		st.Instr = append(st.Instr, in)
	}
	for sc.Scan() {
		n++
		line := sc.Text()
		trim := strings.TrimSpace(line)
		if strings.HasPrefix(trim, "#") || (trim == "" && cur.Len() > 0) {
			continue // comments (and directives), and blank lines inside a continuation
		}
		if cur.Len() == 0 {
			start = n
		}
		if strings.HasSuffix(trim, `\`) {
			cur.WriteString(strings.TrimSuffix(trim, `\`))
			cur.WriteByte(' ')
			continue
		}
		cur.WriteString(trim)
		flush()
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	flush()
	if len(d.Stages) == 0 {
		t.Fatalf("%s: no FROM", file)
	}
	return d
}

// buildContext is the repository root filtered by .dockerignore, as Docker
// sends it to the builder.
type buildContext struct {
	root string
	mu   sync.Mutex // the matcher compiles its patterns lazily: not safe for concurrent use
	pm   *patternmatcher.PatternMatcher
}

func newBuildContext(t testing.TB, root string) *buildContext {
	t.Helper()
	f, err := os.Open(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		t.Fatal(err)
	}
	return &buildContext{root: root, pm: pm}
}

// includes tells whether the context holds rel (a slash path).
func (c *buildContext) includes(t testing.TB, rel string) bool {
	t.Helper()
	c.mu.Lock()
	excluded, err := c.pm.MatchesOrParentMatches(rel)
	c.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	return !excluded
}

// fakeRoot is the file system of one stage, under a temporary folder.
type fakeRoot struct {
	dir     string
	workdir string // absolute, in the image
	env     map[string]string
	args    map[string]string
}

func (r *fakeRoot) host(p string) string {
	if !path.IsAbs(p) {
		p = path.Join(r.workdir, p)
	}
	return filepath.Join(r.dir, filepath.FromSlash(p))
}

func copyFile(src, dst string, mode fs.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, mode.Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// built is the result of emulating a Dockerfile.
type built struct {
	df     *dockerfile
	stages map[string]*fakeRoot // by stage name (and index)
	image  *fakeRoot            // the final stage
}

// emulateBuild reproduces the Dockerfile's stages: COPY from the filtered
// context or an earlier stage into a folder per stage, WORKDIR, ENV and
// ARG, and RUN of the go commands the files use, with a clean environment
// (only the Dockerfile's variables plus the Go caches and proxy settings).
func emulateBuild(t testing.TB, ctx context.Context, df *dockerfile, bc *buildContext) *built {
	t.Helper()
	b := &built{df: df, stages: map[string]*fakeRoot{}}
	for i, st := range df.Stages {
		r := &fakeRoot{dir: t.TempDir(), workdir: "/", env: map[string]string{}, args: map[string]string{
			// BuildKit's automatic platform arguments, for a native build.
			"TARGETOS": runtime.GOOS, "TARGETARCH": runtime.GOARCH,
			"BUILDPLATFORM": runtime.GOOS + "/" + runtime.GOARCH, "TARGETPLATFORM": runtime.GOOS + "/" + runtime.GOARCH,
		}}
		b.stages[fmt.Sprint(i)] = r
		if st.Name != "" {
			b.stages[st.Name] = r
		}
		for _, in := range st.Instr {
			where := fmt.Sprintf("%s:%d", df.Path, in.Line)
			switch in.Cmd {
			case "WORKDIR":
				wd := in.Args
				if !path.IsAbs(wd) {
					wd = path.Join(r.workdir, wd)
				}
				r.workdir = wd
				if err := os.MkdirAll(r.host(wd), 0o755); err != nil {
					t.Fatal(err)
				}
			case "ENV":
				maps.Copy(r.env, parseKV(t, in))
			case "ARG":
				for k, v := range parseKV(t, in) {
					if _, auto := r.args[k]; !auto || v != "" {
						r.args[k] = v
					}
				}
			case "COPY":
				b.copy(t, where, r, in, bc)
			case "RUN":
				b.run(t, ctx, where, r, in)
			}
		}
	}
	b.image = b.stages[fmt.Sprint(len(df.Stages)-1)]
	return b
}

func (b *built) copy(t testing.TB, where string, r *fakeRoot, in instruction, bc *buildContext) {
	t.Helper()
	for k := range in.Flags {
		if k != "from" && k != "chown" && k != "chmod" && k != "link" {
			t.Fatalf("%s: COPY --%s is not reproduced here", where, k)
		}
	}
	parts := in.Exec
	if parts == nil {
		parts = strings.Fields(in.Args)
	}
	if len(parts) < 2 {
		t.Fatalf("%s: COPY needs a source and a destination", where)
	}
	srcs, dst := parts[:len(parts)-1], parts[len(parts)-1]
	toDir := strings.HasSuffix(dst, "/") || len(srcs) > 1
	for _, src := range srcs {
		if strings.ContainsAny(src, "*?[") {
			t.Fatalf("%s: COPY with a wildcard (%s) is not reproduced here", where, src)
		}
		// The source: a stage's file system, or the filtered context.
		var hostSrc string
		var included func(rel string) bool
		if from := in.Flags["from"]; from != "" {
			fr := b.stages[from]
			if fr == nil {
				t.Fatalf("%s: COPY --from=%s: no such earlier stage", where, from)
			}
			hostSrc = fr.host(src)
			included = func(string) bool { return true }
		} else {
			rel := path.Clean(strings.TrimPrefix(src, "/"))
			hostSrc = filepath.Join(bc.root, filepath.FromSlash(rel))
			included = func(sub string) bool { return bc.includes(t, path.Join(rel, sub)) }
		}
		info, err := os.Stat(hostSrc)
		if err != nil {
			t.Fatalf("%s: COPY %s: %v", where, src, err)
		}
		if !info.IsDir() {
			if !included(".") {
				t.Fatalf("%s: COPY %s: excluded from the build context by .dockerignore", where, src)
			}
			target := dst
			if toDir {
				target = path.Join(dst, path.Base(src))
			}
			if err := copyFile(hostSrc, r.host(target), info.Mode()); err != nil {
				t.Fatal(err)
			}
			continue
		}
		// A folder: its contents, what the context holds of them.
		copied := 0
		err = filepath.WalkDir(hostSrc, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			sub, _ := filepath.Rel(hostSrc, p)
			sub = filepath.ToSlash(sub)
			if !included(sub) {
				return nil
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			copied++
			return copyFile(p, r.host(path.Join(dst, sub)), fi.Mode())
		})
		if err != nil {
			t.Fatal(err)
		}
		if copied == 0 {
			t.Fatalf("%s: COPY %s copies nothing (all excluded by .dockerignore?)", where, src)
		}
	}
}

// goEnv is the environment of a go command in the builder: the caches and
// module proxy settings of this machine (they change how fast, not what is
// built), the golang image's GOTOOLCHAIN=local, and the stage's variables.
// GOENV=off: the user's `go env -w` settings (GOFLAGS, say) are not in the
// image either.
func goEnv(t testing.TB, r *fakeRoot, assigns map[string]string) []string {
	t.Helper()
	hostGoEnvOnce.Do(func() {
		out, err := exec.Command("go", "env", "-json", "GOCACHE", "GOMODCACHE", "GOPROXY", "GOSUMDB",
			"GONOSUMDB", "GOPRIVATE", "GONOPROXY", "GOINSECURE").Output()
		if err == nil {
			err = json.Unmarshal(out, &hostGoEnv)
		}
		hostGoEnvErr = err
	})
	if hostGoEnvErr != nil {
		t.Fatalf("go env: %v", hostGoEnvErr)
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "GOTOOLCHAIN=local", "GOENV=off"}
	if tmp := os.Getenv("TMPDIR"); tmp != "" {
		env = append(env, "TMPDIR="+tmp)
	}
	for k, v := range hostGoEnv {
		if v != "" {
			env = append(env, k+"="+v)
		}
	}
	for k, v := range r.env {
		env = append(env, k+"="+v)
	}
	for k, v := range assigns {
		env = append(env, k+"="+v)
	}
	return env
}

var (
	hostGoEnvOnce sync.Once
	hostGoEnv     map[string]string
	hostGoEnvErr  error
)

func (b *built) run(t testing.TB, ctx context.Context, where string, r *fakeRoot, in instruction) {
	t.Helper()
	if len(in.Flags) > 0 {
		t.Fatalf("%s: RUN flags (%v) are not reproduced here", where, in.Flags)
	}
	if in.Exec != nil || strings.ContainsAny(in.Args, "&|;<>`(){}") {
		t.Fatalf("%s: RUN %s: only one plain go command per RUN is reproduced here", where, in.Args)
	}
	lookup := func(k string) string {
		if v, ok := r.env[k]; ok {
			return v
		}
		return r.args[k]
	}
	words, err := shellwords.Parse(os.Expand(in.Args, lookup))
	if err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	assigns := map[string]string{}
	for len(words) > 0 && strings.Contains(words[0], "=") {
		k, v, _ := strings.Cut(words[0], "=")
		assigns[k] = v
		words = words[1:]
	}
	if len(words) < 2 || words[0] != "go" {
		t.Fatalf("%s: RUN %s: only go commands are reproduced here", where, in.Args)
	}
	args := words[1:]
	switch args[0] {
	case "build":
		// The output path is in the stage's file system.
		for i := 1; i < len(args); i++ {
			if args[i] == "-o" && i+1 < len(args) {
				args[i+1] = r.host(args[i+1])
			} else if strings.HasPrefix(args[i], "-o=") {
				args[i] = "-o=" + r.host(strings.TrimPrefix(args[i], "-o="))
			}
		}
	case "mod":
		if len(args) < 2 || (args[1] != "download" && args[1] != "verify") {
			t.Fatalf("%s: RUN %s: not reproduced here", where, in.Args)
		}
	default:
		t.Fatalf("%s: RUN %s: not reproduced here", where, in.Args)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = r.host(r.workdir)
	cmd.Env = goEnv(t, r, assigns)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: RUN %s (emulated in %s): %v\n%s", where, in.Args, cmd.Dir, err, out)
	}
}
