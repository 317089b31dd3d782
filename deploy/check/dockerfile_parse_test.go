package check

// A small Dockerfile reader and a stand-in builder for what BEDS's
// Dockerfile does, for a machine with no Docker engine. It knows the
// instructions and substitutions that file uses and fails on any other, so
// a Dockerfile change that this stand-in cannot reproduce faithfully fails
// the test instead of passing untested.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
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
	Flags map[string]string // --from=build -> from: build (substituted where Words is)
	Args  string            // the rest as written, continuation lines joined
	Exec  []string          // Args as a JSON array (exec form), if it is one
	// Words is Args as the builder reads it, for the instructions it
	// substitutes variables in (FROM, ARG, ENV, LABEL, COPY, WORKDIR, USER,
	// EXPOSE): quotes removed, $VAR and ${VAR...} replaced. RUN, CMD,
	// ENTRYPOINT and HEALTHCHECK are left to the shell, or to nothing.
	Words []string
	// KV holds the pairs of an ARG, ENV or LABEL. An ARG's value is the one
	// the build uses (its --build-arg, else its default, else the global
	// ARG's); an ARG with none is absent: the builder leaves it unset.
	KV map[string]string
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
	// Undefined lists the variables the file substitutes (outside RUN) that
	// have no value: never declared, or an ARG with no default and no
	// --build-arg. The builder reads them as empty.
	Undefined []string
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
func (s *stage) env() map[string]string {
	m := map[string]string{}
	for _, in := range s.all("ENV") {
		maps.Copy(m, in.KV)
	}
	return m
}

// label returns the value of the stage's LABEL key (the last one wins).
func (s *stage) label(key string) string {
	var v string
	for _, in := range s.all("LABEL") {
		if l, ok := in.KV[key]; ok {
			v = l
		}
	}
	return v
}

var knownInstructions = map[string]bool{
	"FROM": true, "ARG": true, "ENV": true, "WORKDIR": true, "COPY": true, "RUN": true, "LABEL": true,
	"USER": true, "EXPOSE": true, "HEALTHCHECK": true, "ENTRYPOINT": true, "CMD": true,
}

// How the builder reads the arguments of the instructions it substitutes
// variables in.
type lexMode int

const (
	splitAll   lexMode = iota // COPY, EXPOSE: words; an unquoted value is split at blanks too
	splitWords                // FROM, ARG, ENV, LABEL: words; a value stays whole
	oneWord                   // WORKDIR, USER, a flag's value: the whole text is one word
)

var substituted = map[string]lexMode{
	"FROM": splitWords, "ARG": splitWords, "ENV": splitWords, "LABEL": splitWords,
	"COPY": splitAll, "EXPOSE": splitAll, "WORKDIR": oneWord, "USER": oneWord,
}

// automaticArgs are BuildKit's platform arguments for a native build:
// defined in the global scope (FROM lines), and in a stage that declares
// them with ARG.
func automaticArgs() map[string]string {
	p := runtime.GOOS + "/" + runtime.GOARCH
	return map[string]string{
		"BUILDPLATFORM": p, "BUILDOS": runtime.GOOS, "BUILDARCH": runtime.GOARCH,
		"TARGETPLATFORM": p, "TARGETOS": runtime.GOOS, "TARGETARCH": runtime.GOARCH,
	}
}

// parseDockerfile reads a Dockerfile as the builder does given these
// --build-arg values (see readDockerfile).
func parseDockerfile(t testing.TB, file string, buildArgs map[string]string) *dockerfile {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d, err := readDockerfile(file, f, buildArgs)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// readDockerfile reads a Dockerfile: comments, parser directives,
// backslash continuations, flags, the exec (JSON) form, and the builder's
// variable substitution given these --build-arg values, with ARG scopes as
// Docker has them: an ARG before the first FROM serves the FROM lines, and
// a stage sees only the ARGs it declares (one declared without a default
// takes the global one's value). A --build-arg no ARG declares is an error
// (Docker warns that it was not consumed).
func readDockerfile(name string, r io.Reader, buildArgs map[string]string) (*dockerfile, error) {
	p := &dfParser{
		d: &dockerfile{Path: name}, buildArgs: buildArgs, consumed: map[string]bool{},
		global: automaticArgs(), undefined: map[string]bool{},
	}
	sc := bufio.NewScanner(r)
	n, start := 0, 0
	var cur strings.Builder
	flush := func() error {
		text := strings.TrimSpace(cur.String())
		cur.Reset()
		if text == "" {
			return nil
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
		if err := p.add(in); err != nil {
			return fmt.Errorf("%s:%d: %w", name, in.Line, err)
		}
		return nil
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
		if err := flush(); err != nil {
			return nil, err
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if err := flush(); err != nil {
		return nil, err
	}
	if len(p.d.Stages) == 0 {
		return nil, fmt.Errorf("%s: no FROM", name)
	}
	for _, k := range slices.Sorted(maps.Keys(buildArgs)) {
		if !p.consumed[k] {
			return nil, fmt.Errorf("%s: --build-arg %s: no ARG declares it", name, k)
		}
	}
	p.d.Undefined = slices.Sorted(maps.Keys(p.undefined))
	return p.d, nil
}

// dfParser holds the variable scopes while a Dockerfile is read.
type dfParser struct {
	d         *dockerfile
	buildArgs map[string]string
	consumed  map[string]bool   // build arguments some ARG declares
	global    map[string]string // the ARGs before the first FROM, and the automatic ones
	args, env map[string]string // the current stage's ARGs (those with a value) and ENVs
	undefined map[string]bool
}

func (p *dfParser) add(in instruction) error {
	if !knownInstructions[in.Cmd] {
		return fmt.Errorf("instruction %s is not one deploy/check can reproduce; teach dockerfile_parse_test.go", in.Cmd)
	}
	global := in.Cmd == "FROM" || len(p.d.Stages) == 0
	if len(p.d.Stages) == 0 && in.Cmd != "FROM" && in.Cmd != "ARG" {
		return fmt.Errorf("%s before FROM", in.Cmd)
	}
	sub := &substituter{undefined: p.undefined, lookup: func(k string) (string, bool) {
		if v, ok := p.env[k]; ok {
			return v, true // ENV wins over an ARG of the same name
		}
		v, ok := p.args[k]
		return v, ok
	}}
	if global {
		sub.lookup = func(k string) (string, bool) { v, ok := p.global[k]; return v, ok }
	}
	if mode, ok := substituted[in.Cmd]; ok {
		for k, v := range in.Flags {
			w, err := sub.lex(v, oneWord)
			if err != nil {
				return fmt.Errorf("--%s: %w", k, err)
			}
			in.Flags[k] = w[0]
		}
		var err error
		if in.Exec != nil && in.Cmd == "COPY" {
			for _, w := range in.Exec {
				x, err := sub.lex(w, oneWord)
				if err != nil {
					return err
				}
				in.Words = append(in.Words, x[0])
			}
		} else if in.Words, err = sub.lex(in.Args, mode); err != nil {
			return err
		}
	}

	switch in.Cmd {
	case "FROM":
		words := in.Words
		if len(words) == 0 {
			return errors.New("FROM without an image")
		}
		s := &stage{Image: words[0], Platform: in.Flags["platform"]}
		if len(words) == 3 && strings.EqualFold(words[1], "AS") {
			s.Name = words[2]
		} else if len(words) != 1 {
			return fmt.Errorf("FROM %s", in.Args)
		}
		for _, earlier := range p.d.Stages {
			if earlier.Name != "" && earlier.Name == s.Image {
				return fmt.Errorf("FROM %s: a stage based on an earlier stage is not reproduced here", s.Image)
			}
		}
		p.d.Stages = append(p.d.Stages, s)
		p.args, p.env = map[string]string{}, map[string]string{}
	case "ARG":
		in.KV = map[string]string{}
		for _, w := range in.Words {
			name, def, hasDef := strings.Cut(w, "=")
			v, set := p.buildArgs[name]
			if set {
				p.consumed[name] = true
			} else if hasDef {
				v, set = def, true
			} else {
				v, set = p.global[name]
			}
			if !set {
				continue
			}
			in.KV[name] = v
			if global {
				p.global[name] = v
			} else {
				p.args[name] = v
			}
		}
		if global {
			return nil // not part of any stage
		}
	case "ENV", "LABEL":
		in.KV = map[string]string{}
		if first, rest, _ := strings.Cut(in.Args, " "); in.Cmd == "ENV" && !strings.Contains(first, "=") {
			// The legacy "ENV KEY value": the rest of the line is the value.
			v, err := sub.lex(strings.TrimSpace(rest), oneWord)
			if err != nil {
				return err
			}
			in.KV[first] = v[0]
		} else {
			for _, w := range in.Words {
				k, v, ok := strings.Cut(w, "=")
				if !ok || k == "" {
					return fmt.Errorf("%s %s: %q is not KEY=value", in.Cmd, in.Args, w)
				}
				in.KV[k] = v
			}
		}
		if in.Cmd == "ENV" {
			maps.Copy(p.env, in.KV)
		}
	}
	st := p.d.Stages[len(p.d.Stages)-1]
	st.Instr = append(st.Instr, in)
	return nil
}

// substituter removes quotes and replaces variables as the builder's shell
// lexer does, for what a Dockerfile can use: 'single' and "double" quotes,
// backslash escapes, $VAR, ${VAR}, and ${VAR:-word}, ${VAR-word},
// ${VAR:+word}, ${VAR+word}, ${VAR:?message}, ${VAR?message}. Other forms
// are errors.
type substituter struct {
	lookup    func(name string) (value string, set bool)
	undefined map[string]bool // the names read bare ($VAR, ${VAR}) with no value
}

// lex reads text as mode says. In oneWord mode it returns exactly one word.
func (s *substituter) lex(text string, mode lexMode) ([]string, error) {
	rs := []rune(text)
	var out []string
	var cur strings.Builder
	inWord := false
	end := func() {
		if inWord {
			out = append(out, cur.String())
			cur.Reset()
			inWord = false
		}
	}
	blank := func(r rune) bool { return r == ' ' || r == '\t' }
	for i := 0; i < len(rs); i++ {
		c := rs[i]
		switch {
		case blank(c) && mode != oneWord:
			end()
		case c == '\\':
			if i+1 < len(rs) {
				i++
			}
			cur.WriteRune(rs[i])
			inWord = true
		case c == '\'':
			j := slices.Index(rs[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("unterminated ' in %q", text)
			}
			cur.WriteString(string(rs[i+1 : i+1+j]))
			inWord, i = true, i+1+j
		case c == '"':
			inWord = true
			for i++; i < len(rs) && rs[i] != '"'; i++ {
				switch {
				case rs[i] == '\\' && i+1 < len(rs) && strings.ContainsRune(`"\$`, rs[i+1]):
					i++
					cur.WriteRune(rs[i])
				case rs[i] == '$':
					v, n, err := s.dollar(rs[i:])
					if err != nil {
						return nil, err
					}
					cur.WriteString(v)
					i += n - 1
				default:
					cur.WriteRune(rs[i])
				}
			}
			if i == len(rs) {
				return nil, fmt.Errorf("unterminated \" in %q", text)
			}
		case c == '$':
			v, n, err := s.dollar(rs[i:])
			if err != nil {
				return nil, err
			}
			i += n - 1
			for _, r := range v {
				if mode == splitAll && (blank(r) || r == '\n') {
					end()
					continue
				}
				cur.WriteRune(r)
				inWord = true
			}
		default:
			cur.WriteRune(c)
			inWord = true
		}
	}
	if mode == oneWord {
		return []string{cur.String()}, nil
	}
	end()
	return out, nil
}

func isNameRune(r rune, first bool) bool {
	return r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (!first && r >= '0' && r <= '9')
}

// dollar reads the substitution at rs[0] == '$': its value and how many
// runes it took.
func (s *substituter) dollar(rs []rune) (string, int, error) {
	get := func(name string) string {
		v, ok := s.lookup(name)
		if !ok {
			s.undefined[name] = true
		}
		return v
	}
	if len(rs) < 2 || rs[1] != '{' {
		n := 1
		for n < len(rs) && isNameRune(rs[n], n == 1) {
			n++
		}
		if n == 1 {
			return "$", 1, nil // a lone $ is itself
		}
		return get(string(rs[1:n])), n, nil
	}
	depth, j := 1, 2
	for ; j < len(rs) && depth > 0; j++ {
		switch rs[j] {
		case '{':
			depth++
		case '}':
			depth--
		}
	}
	if depth > 0 {
		return "", 0, fmt.Errorf("unterminated ${ in %q", string(rs))
	}
	body := string(rs[2 : j-1])
	k := 0
	for k < len(body) && isNameRune(rune(body[k]), k == 0) {
		k++
	}
	name, rest := body[:k], body[k:]
	if name == "" {
		return "", 0, fmt.Errorf("${%s}: not a variable name", body)
	}
	if rest == "" {
		return get(name), j, nil
	}
	colon := strings.HasPrefix(rest, ":")
	op, word := strings.TrimPrefix(rest, ":"), ""
	if op == "" || !strings.ContainsRune("-+?", rune(op[0])) {
		return "", 0, fmt.Errorf("${%s}: this substitution is not reproduced here", body)
	}
	op, word = op[:1], op[1:]
	v, set := s.lookup(name)
	has := set && (!colon || v != "")
	expand := func() (string, error) {
		w, err := s.lex(word, oneWord)
		if err != nil {
			return "", err
		}
		return w[0], nil
	}
	switch {
	case op == "-" && !has, op == "+" && has:
		w, err := expand()
		return w, j, err
	case op == "+":
		return "", j, nil
	case op == "?" && !has:
		w, err := expand()
		if err != nil {
			return "", 0, err
		}
		return "", 0, fmt.Errorf("%s: %s", name, w)
	}
	return v, j, nil
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
// ARG, and RUN of the go commands the file uses, with a clean environment
// (only the stage's ARG and ENV variables plus the Go caches and proxy
// settings). The paths and values are the ones readDockerfile substituted
// for the build arguments it was given.
func emulateBuild(t testing.TB, ctx context.Context, df *dockerfile, bc *buildContext) *built {
	t.Helper()
	b := &built{df: df, stages: map[string]*fakeRoot{}}
	for i, st := range df.Stages {
		r := &fakeRoot{dir: t.TempDir(), workdir: "/", env: map[string]string{}, args: map[string]string{}}
		b.stages[fmt.Sprint(i)] = r
		if st.Name != "" {
			b.stages[st.Name] = r
		}
		for _, in := range st.Instr {
			where := fmt.Sprintf("%s:%d", df.Path, in.Line)
			switch in.Cmd {
			case "WORKDIR":
				wd := in.Words[0]
				if !path.IsAbs(wd) {
					wd = path.Join(r.workdir, wd)
				}
				r.workdir = wd
				if err := os.MkdirAll(r.host(wd), 0o755); err != nil {
					t.Fatal(err)
				}
			case "ENV":
				maps.Copy(r.env, in.KV)
			case "ARG":
				maps.Copy(r.args, in.KV) // the values readDockerfile resolved
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
	parts := in.Words
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
	// As in the builder, a RUN sees the stage's ARGs as variables, and an
	// ENV of the same name wins (exec keeps the last of duplicates).
	for k, v := range r.args {
		env = append(env, k+"="+v)
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
