package check

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/beds-project/beds/shared/testenv"
)

// TestDockerignore checks what the build context holds: what the
// Dockerfile copies, and never go.work, .git or a local env file.
func TestDockerignore(t *testing.T) {
	bc := newBuildContext(t, repoRoot(t))
	for rel, want := range map[string]bool{
		"shared/go.mod":                         true,
		"shared/ipl/main.go":                    true,
		"services/appserver/main.go":            true,
		"services/tercero/go.sum":               true,
		"templates/users_rec.toml":              true,
		"deploy/config/beds.toml":               true,
		"go.work":                               false,
		"go.work.sum":                           false,
		".git/config":                           false,
		".env":                                  false,
		"deploy/config/env_prod.toml":           false, // holds passwords
		"deploy/config/env_dev.toml":            false,
		"deploy/mariadb/001_users.sql":          false,
		"docker-compose.yml":                    false,
		"services/appserver/process_test.go":    false,
		"services/appserver/testdata/slow.sql":  false,
		"shared/store/mongo/adapter_test.go":    false,
		"deploy/ferretdb/main.go":               false,
		"deploy/check/dockerfile_test.go":       false,
		"services/appserver/bin/appserver":      false,
		"services/appserver/internal/x/y.go":    true,
		"shared/cmd/bedsctl/main.go":            true,
		"templates/subdir/some_other_rec.toml":  true,
		"deploy/config/beds.toml.orig":          false,
		"deploy/config/nested/beds.toml":        false,
		"scripts/cluster.sh":                    false,
		"Dockerfile":                            false, // the builder reads it apart from the context
		"services/appserver/testdata/templates": false,
	} {
		if got := bc.includes(t, rel); got != want {
			t.Errorf("context includes %s: %v, want %v", rel, got, want)
		}
	}
}

// TestDockerfiles builds every role as the Dockerfile does given
// --build-arg ROLE=<role>, checks the binary is static and stripped, and
// runs it the way the image would (its ENV, ENTRYPOINT and HEALTHCHECK, its
// files at their paths) against real servers.
func TestDockerfiles(t *testing.T) {
	root := repoRoot(t)
	bc := newBuildContext(t, root)
	known := knownVars(t)
	var srv servers
	if !testing.Short() {
		// One vhost and one set of databases for the four nodes, as in compose.
		srv = servers{amqp: testenv.AMQP(t), dsn: testenv.MariaDB(t), mongo: testenv.Mongo(t)}
	}
	// One role after the other: on a cold build cache the first build
	// compiles every dependency and the others reuse it; in parallel each
	// would compile them all at once.
	for _, role := range roles(t) {
		t.Run(role, func(t *testing.T) {
			start := time.Now()
			df := parseDockerfile(t, filepath.Join(root, "Dockerfile"), map[string]string{"ROLE": role})
			spec := checkDockerfile(t, df, role, known)
			ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
			defer cancel()
			b := emulateBuild(t, ctx, df, bc)
			t.Logf("built as the Dockerfile does in %s", time.Since(start).Round(time.Millisecond))
			checkImage(t, b, role, spec)
			if testing.Short() {
				t.Skip("-short: running the binary needs RabbitMQ, MariaDB and MongoDB")
			}
			runImage(t, b, role, spec, srv)
		})
	}
}

// TestDockerfileNeedsRole checks that a build without --build-arg ROLE
// stops before it compiles anything instead of building some role under
// another's tag: ROLE has no default, so a COPY of the build stage names a
// file the context lacks. And that no role keeps a Dockerfile of its own,
// which nothing would build.
func TestDockerfileNeedsRole(t *testing.T) {
	root := repoRoot(t)
	df := parseDockerfile(t, filepath.Join(root, "Dockerfile"), nil)
	if fmt.Sprint(df.Undefined) != "[ROLE]" {
		t.Errorf("without --build-arg ROLE, the variables with no value are %v, want [ROLE]", df.Undefined)
	}
	bc := newBuildContext(t, root)
	failsAt := -1
	for i, in := range df.Stages[0].Instr {
		if in.Cmd == "RUN" && failsAt < 0 {
			t.Fatalf("%s:%d: without ROLE the build reaches RUN %s", df.Path, in.Line, in.Args)
		}
		if in.Cmd != "COPY" || in.Flags["from"] != "" {
			continue
		}
		for _, src := range in.Words[:len(in.Words)-1] {
			rel := path.Clean(src)
			if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(rel))); err != nil || !bc.includes(t, rel) {
				failsAt = i
			}
		}
		if failsAt >= 0 {
			t.Logf("without ROLE the build fails at %s:%d: COPY %s", df.Path, in.Line, strings.Join(in.Words, " "))
			break
		}
	}
	if failsAt < 0 {
		t.Errorf("without ROLE every COPY of the build stage finds its files")
	}
	if stray, _ := filepath.Glob(filepath.Join(root, "services", "*", "Dockerfile")); len(stray) > 0 {
		t.Errorf("%v: every role builds from the repository's Dockerfile with --build-arg ROLE; remove these", stray)
	}
}

type servers struct{ amqp, dsn, mongo string }

// imageSpec is what the final stage declares.
type imageSpec struct {
	entrypoint  []string
	healthcheck []string
	env         map[string]string
	port        string
}

var goDirective = regexp.MustCompile(`(?m)^go (\d+)\.(\d+)`)

// goMinor reads "1.26" style versions.
func goMinor(s string) (int, int, bool) {
	m := regexp.MustCompile(`^(?:go)?(\d+)\.(\d+)`).FindStringSubmatch(s)
	if m == nil {
		return 0, 0, false
	}
	a, _ := strconv.Atoi(m[1])
	b, _ := strconv.Atoi(m[2])
	return a, b, true
}

// checkDockerfile checks the Dockerfile's text: the builder, the layer
// order, the build flags and the final image's declarations.
func checkDockerfile(t *testing.T, df *dockerfile, role string, known map[string]bool) imageSpec {
	t.Helper()
	root := repoRoot(t)
	if len(df.Stages) < 2 {
		t.Fatalf("%s: want a build stage and a final stage, have %d stages", df.Path, len(df.Stages))
	}
	build, final := df.Stages[0], df.final()

	// The builder: a golang image whose Go is the one go.mod asks for and the
	// one these tests build with.
	img, tag, _ := strings.Cut(build.Image, ":")
	if img != "golang" || tag == "" || strings.HasPrefix(tag, "latest") {
		t.Errorf("build stage FROM %s: want golang:<version>-...", build.Image)
	}
	imgMaj, imgMin, ok := goMinor(tag)
	if !ok {
		t.Errorf("build stage FROM %s: no Go version in the tag", build.Image)
	}
	for _, mod := range []string{"shared/go.mod", "services/" + role + "/go.mod"} {
		src, err := os.ReadFile(filepath.Join(root, mod))
		if err != nil {
			t.Fatal(err)
		}
		m := goDirective.FindSubmatch(src)
		if m == nil {
			t.Fatalf("%s: no go directive", mod)
		}
		maj, _ := strconv.Atoi(string(m[1]))
		min, _ := strconv.Atoi(string(m[2]))
		if maj > imgMaj || (maj == imgMaj && min > imgMin) {
			t.Errorf("%s needs go %d.%d; the builder image %s has an older Go", mod, maj, min, build.Image)
		}
	}
	if maj, min, _ := goMinor(runtime.Version()); maj != imgMaj || min != imgMin {
		t.Errorf("these checks build with %s but the image builds with %s: the emulated build would not be the image's; align them",
			runtime.Version(), build.Image)
	}

	if len(df.Undefined) > 0 {
		t.Errorf("%s with ROLE=%s substitutes variables that have no value: %v", df.Path, role, df.Undefined)
	}

	benv := build.env()
	if benv["GOWORK"] != "off" || benv["CGO_ENABLED"] != "0" {
		t.Errorf("build stage ENV: want GOWORK=off and CGO_ENABLED=0, have %v", benv)
	}

	// Layer order: go.mod and go.sum, then the download, then the sources,
	// then the build: a source change must not invalidate the download.
	download, sources, gobuild := -1, -1, -1
	for i, in := range build.Instr {
		switch {
		case in.Cmd == "RUN" && strings.Contains(in.Args, "go mod download"):
			download = i
		case in.Cmd == "COPY" && sources < 0 && !strings.Contains(in.Args, "go.mod"):
			sources = i
		case in.Cmd == "RUN" && strings.Contains(in.Args, "go build"):
			gobuild = i
			for _, flag := range []string{"-trimpath", "-ldflags", "-s", "-w"} {
				if !strings.Contains(in.Args, flag) {
					t.Errorf("%s:%d: go build lacks %s", df.Path, in.Line, flag)
				}
			}
		}
	}
	if download < 0 || sources < 0 || gobuild < 0 || download > sources || sources > gobuild {
		t.Errorf("%s: want COPY go.mod/go.sum, RUN go mod download, COPY sources, RUN go build in that order (at %d, %d, %d)",
			df.Path, download, sources, gobuild)
	}

	// The final image.
	if !strings.HasPrefix(final.Image, "gcr.io/distroless/static") || !strings.HasSuffix(final.Image, ":nonroot") {
		t.Errorf("final stage FROM %s: want gcr.io/distroless/static...:nonroot", final.Image)
	}
	users := final.all("USER")
	if len(users) == 0 {
		t.Errorf("final stage: no USER (the :nonroot base sets it, but say it)")
	}
	for _, u := range users {
		if name, _, _ := strings.Cut(u.Words[0], ":"); name == "root" || name == "0" {
			t.Errorf("%s:%d: USER %s runs as root", df.Path, u.Line, u.Args)
		}
	}
	var spec imageSpec
	eps := final.all("ENTRYPOINT")
	if len(eps) != 1 || len(eps[0].Exec) == 0 {
		t.Fatalf("final stage: want one ENTRYPOINT in exec form (no shell in the image)")
	}
	spec.entrypoint = eps[0].Exec
	if len(final.all("CMD")) > 0 {
		t.Errorf("final stage: CMD would be passed to the node as arguments")
	}
	hcs := final.all("HEALTHCHECK")
	if len(hcs) != 1 {
		t.Fatalf("final stage: want one HEALTHCHECK")
	}
	rest, ok := strings.CutPrefix(hcs[0].Args, "CMD ")
	if !ok || json.Unmarshal([]byte(strings.TrimSpace(rest)), &spec.healthcheck) != nil {
		t.Fatalf("%s:%d: HEALTHCHECK must be CMD in exec form (no shell in the image): %s", df.Path, hcs[0].Line, hcs[0].Args)
	}
	if want := []string{spec.entrypoint[0], "healthcheck"}; fmt.Sprint(spec.healthcheck) != fmt.Sprint(want) {
		t.Errorf("HEALTHCHECK CMD %v, want %v", spec.healthcheck, want)
	}

	for k, want := range map[string]string{
		"org.opencontainers.image.title":       "beds-" + role,
		"org.opencontainers.image.description": "BEDS " + role + " node",
	} {
		if got := final.label(k); got != want {
			t.Errorf("final stage LABEL %s=%q, want %q", k, got, want)
		}
	}

	spec.env = final.env()
	for k := range spec.env {
		if strings.HasPrefix(k, "BEDS_") && !known[k] {
			t.Errorf("final stage ENV %s: not a variable shared/config knows", k)
		}
	}
	for k, want := range map[string]string{
		"BEDS_CONFIG_DIR": "/etc/beds/config", "BEDS_TEMPLATE_DIR": "/etc/beds/templates", "BEDS_ENV": "prod",
	} {
		if spec.env[k] != want {
			t.Errorf("final stage ENV %s=%q, want %q", k, spec.env[k], want)
		}
	}
	host, port, err := net.SplitHostPort(spec.env["BEDS_HTTP_ADDR"])
	if err != nil || host != "0.0.0.0" {
		t.Errorf("final stage ENV BEDS_HTTP_ADDR=%q: want 0.0.0.0:<port> (reachable from outside the container)", spec.env["BEDS_HTTP_ADDR"])
	}
	spec.port = port
	exposed := false
	for _, e := range final.all("EXPOSE") {
		for _, p := range e.Words {
			exposed = exposed || strings.TrimSuffix(p, "/tcp") == port
		}
	}
	if !exposed {
		t.Errorf("final stage: EXPOSE does not name the ops port %s", port)
	}
	for _, c := range final.all("COPY") {
		if from := c.Flags["from"]; from != "" && from != build.Name {
			t.Errorf("%s:%d: the final stage copies from %q, not from the build stage", df.Path, c.Line, from)
		}
	}
	return spec
}

// checkImage checks the emulated image: the binary (static, stripped,
// built from the role's module alone with the Dockerfile's flags) and the
// files the ENV points at.
func checkImage(t *testing.T, b *built, role string, spec imageSpec) {
	t.Helper()
	img := b.image
	bin := img.host(spec.entrypoint[0])
	info, err := os.Stat(bin)
	if err != nil || info.Mode()&0o111 == 0 {
		t.Fatalf("ENTRYPOINT %s: not an executable in the image (%v)", spec.entrypoint[0], err)
	}

	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s has a program interpreter: not static", spec.entrypoint[0])
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("%s needs shared libraries %v: not static", spec.entrypoint[0], libs)
	}
	if f.Section(".symtab") != nil {
		t.Errorf("%s has a symbol table: not stripped (-s)", spec.entrypoint[0])
	}
	for _, s := range f.Sections {
		if strings.HasPrefix(s.Name, ".debug_") || strings.HasPrefix(s.Name, ".zdebug_") {
			t.Errorf("%s has DWARF section %s: not stripped (-w)", spec.entrypoint[0], s.Name)
			break
		}
	}

	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if want := "github.com/beds-project/beds/services/" + role; bi.Main.Path != want {
		t.Errorf("binary's main module %s, want %s", bi.Main.Path, want)
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	// (Go does not record -ldflags next to -trimpath; the ELF checks above
	// see what -s -w did.)
	if settings["-trimpath"] != "true" || settings["CGO_ENABLED"] != "0" {
		t.Errorf("binary built with -trimpath=%q CGO_ENABLED=%q; want true and 0", settings["-trimpath"], settings["CGO_ENABLED"])
	}
	if settings["GOOS"] != runtime.GOOS || settings["GOARCH"] != runtime.GOARCH {
		t.Errorf("binary for %s/%s", settings["GOOS"], settings["GOARCH"])
	}
	sharedReplaced := false
	for _, d := range bi.Deps {
		if d.Path == "github.com/beds-project/beds/shared" && d.Replace != nil && d.Replace.Path == "../../shared" {
			sharedReplaced = true
		}
	}
	if !sharedReplaced {
		t.Errorf("binary does not record shared => ../../shared: not built from the role's module with GOWORK=off")
	}

	// What the image holds besides the base: the binary, the config, the
	// templates, nothing else.
	cfg := img.host(spec.env["BEDS_CONFIG_DIR"] + "/beds.toml")
	if _, err := os.Stat(cfg); err != nil {
		t.Errorf("BEDS_CONFIG_DIR=%s holds no beds.toml in the image", spec.env["BEDS_CONFIG_DIR"])
	}
	tmpls, _ := filepath.Glob(img.host(spec.env["BEDS_TEMPLATE_DIR"] + "/*.toml"))
	if len(tmpls) == 0 {
		t.Errorf("BEDS_TEMPLATE_DIR=%s holds no templates in the image", spec.env["BEDS_TEMPLATE_DIR"])
	}
	var files []string
	var total int64
	_ = filepath.WalkDir(img.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, _ := d.Info()
		total += fi.Size()
		rel, _ := filepath.Rel(img.dir, p)
		rel = "/" + filepath.ToSlash(rel)
		files = append(files, rel)
		if rel != spec.entrypoint[0] && !strings.HasPrefix(rel, "/etc/beds/") {
			t.Errorf("the image adds %s: only the binary and /etc/beds are expected", rel)
		}
		return nil
	})
	t.Logf("image adds %d files, %.1f MB over the distroless base (binary %.1f MB)",
		len(files), float64(total)/1e6, float64(info.Size())/1e6)
}

// runImage starts the binary as the container would: the image's ENV (paths
// into the emulated image), the servers compose would name, an empty
// working folder; checks /readyz, the HEALTHCHECK command, the drain on
// SIGTERM, and the HEALTHCHECK failing once nothing listens.
func runImage(t *testing.T, b *built, role string, spec imageSpec, srv servers) {
	t.Helper()
	img := b.image
	port := freePort(t)
	env := []string{"PATH=/usr/local/bin:/usr/bin:/bin"}
	for k, v := range spec.env {
		if path.IsAbs(v) {
			if _, err := os.Stat(img.host(v)); err == nil {
				v = img.host(v)
			}
		}
		if k == "BEDS_HTTP_ADDR" {
			v = "0.0.0.0:" + port // the image's address, on a free port of this machine
		}
		env = append(env, k+"="+v)
	}
	env = append(env, "BEDS_AMQP_URL="+srv.amqp, "BEDS_MARIADB_DSN="+srv.dsn, "BEDS_MONGO_URI="+srv.mongo,
		"BEDS_NODE_NAME="+role+"-image")
	argv := func(a []string) (string, []string) { return img.host(a[0]), a[1:] }
	name, args := argv(spec.entrypoint)

	// The image's BEDS_ENV=prod refuses the test servers' stock accounts
	// (RabbitMQ's guest), naming the key; the run below is qa, which
	// logs JSON as prod does and accepts them.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	out, code, err := run(ctx, t.TempDir(), env, name, args...)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	if code != 1 || !strings.Contains(out, "config amqp.url") || !strings.Contains(out, "stock user guest") {
		t.Errorf("BEDS_ENV=prod with RabbitMQ's guest: exit %d, want 1 and a refusal naming amqp.url\n%s", code, out)
	}
	env = append(env, "BEDS_ENV=qa")

	node := exec.Command(name, args...)
	node.Env, node.Dir = env, t.TempDir()
	var logs bytes.Buffer
	node.Stdout, node.Stderr = &logs, &logs
	if err := node.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = node.Wait(); close(exited) }()
	defer func() {
		select {
		case <-exited:
		default:
			_ = node.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("node output:\n%s", logs.String())
		}
	}()

	if !waitReady(t, "127.0.0.1:"+port, exited, 30*time.Second) {
		t.Fatalf("%s: /readyz did not answer 200 within 30s", role)
	}
	healthcheck := func() (string, int) {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		name, args := argv(spec.healthcheck)
		out, code, err := run(ctx, t.TempDir(), env, name, args...)
		if err != nil {
			t.Fatal(err)
		}
		return out, code
	}
	if out, code := healthcheck(); code != 0 {
		t.Errorf("HEALTHCHECK %v against a ready node: exit %d\n%s", spec.healthcheck, code, out)
	}

	if err := node.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
		if code := node.ProcessState.ExitCode(); code != 0 {
			t.Errorf("exit code %d after SIGTERM, want 0 (a clean drain)", code)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("no exit within 40s of SIGTERM")
	}
	if !strings.Contains(logs.String(), `"level":"INFO"`) {
		t.Errorf("BEDS_ENV=qa (and prod) should log JSON lines")
	}
	if out, code := healthcheck(); code != 1 {
		t.Errorf("HEALTHCHECK with nothing listening: exit %d, want 1\n%s", code, out)
	}
}
