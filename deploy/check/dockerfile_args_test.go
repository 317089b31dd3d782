package check

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// A Dockerfile using every substitution readDockerfile reproduces.
const substitutionDockerfile = `# syntax=docker/dockerfile:1
ARG BASE=golang:1.26
ARG GLOBAL_UNSET
FROM --platform=$BUILDPLATFORM ${BASE}-bookworm AS build
ARG ROLE
ARG BASE GLOBAL_UNSET
ARG TARGETOS
ARG DEF=d1 OVER=o1 EMPTY= PORTS="80 443"
ENV OVER=fromenv
WORKDIR /src/${ROLE:-none}/$TARGETOS
COPY a/${ROLE}/x "b c/"
COPY ["${ROLE}/y", "/z/"]
LABEL q='$ROLE' e=\$ROLE d="x ${ROLE}" alt=${ROLE:+yes} alt2=${NOPE:+yes} \
      dflt=${NOPE-dd} emp=${EMPTY:-e1} emp2=${EMPTY-e2} over=$OVER base=$BASE
ENV U=$GLOBAL_UNSET LIST=$PORTS
ENV LEG some value $ROLE
EXPOSE $PORTS 8080
USER ${ROLE:-nobody}:x

FROM scratch
ARG STAGE=build
COPY --from=$STAGE /out /out
LABEL role=${ROLE}x def=$DEF
`

func TestReadDockerfileSubstitution(t *testing.T) {
	platform := runtime.GOOS + "/" + runtime.GOARCH
	for _, tc := range []struct {
		name      string
		args      map[string]string
		role      string // what ${ROLE} reads in the first stage
		base      string
		undefined []string
	}{
		{"no build args", nil, "", "golang:1.26", []string{"DEF", "GLOBAL_UNSET", "ROLE"}},
		{"ROLE given", map[string]string{"ROLE": "admin"}, "admin", "golang:1.26", []string{"DEF", "GLOBAL_UNSET", "ROLE"}},
		{"global ARG overridden", map[string]string{"ROLE": "admin", "BASE": "golang:1.27"}, "admin", "golang:1.27",
			[]string{"DEF", "GLOBAL_UNSET", "ROLE"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := readDockerfile("Dockerfile", strings.NewReader(substitutionDockerfile), tc.args)
			if err != nil {
				t.Fatal(err)
			}
			if len(d.Stages) != 2 {
				t.Fatalf("%d stages, want 2", len(d.Stages))
			}
			build, final := d.Stages[0], d.Stages[1]
			if build.Image != tc.base+"-bookworm" || build.Name != "build" || build.Platform != platform {
				t.Errorf("stage 0: FROM --platform=%s %s AS %s", build.Platform, build.Image, build.Name)
			}
			only := func(s *stage, cmd string, i int) instruction {
				t.Helper()
				all := s.all(cmd)
				if len(all) <= i {
					t.Fatalf("no %s #%d", cmd, i)
				}
				return all[i]
			}
			eq := func(what string, got, want any) {
				t.Helper()
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("%s = %v, want %v", what, got, want)
				}
			}

			// ARG values: the build arg, the default, the global one, or none.
			args := map[string]string{}
			for _, in := range build.all("ARG") {
				for k, v := range in.KV {
					args[k] = v
				}
			}
			want := map[string]string{"BASE": tc.base, "TARGETOS": runtime.GOOS, "DEF": "d1", "OVER": "o1", "EMPTY": "", "PORTS": "80 443"}
			if tc.role != "" {
				want["ROLE"] = tc.role
			}
			eq("the first stage's ARGs", args, want)

			roleOr := func(def string) string {
				if tc.role == "" {
					return def
				}
				return tc.role
			}
			eq("WORKDIR", only(build, "WORKDIR", 0).Words, []string{"/src/" + roleOr("none") + "/" + runtime.GOOS})
			eq("COPY", only(build, "COPY", 0).Words, []string{"a/" + tc.role + "/x", "b c/"})
			eq("COPY exec form", only(build, "COPY", 1).Words, []string{tc.role + "/y", "/z/"})
			alt := ""
			if tc.role != "" {
				alt = "yes"
			}
			eq("LABEL", only(build, "LABEL", 0).KV, map[string]string{
				"q": "$ROLE", "e": "$ROLE", "d": "x " + tc.role, "alt": alt, "alt2": "", "dflt": "dd",
				"emp": "e1", "emp2": "", "over": "fromenv", "base": tc.base,
			})
			eq("ENV", build.env(), map[string]string{
				"OVER": "fromenv", "U": "", "LIST": "80 443", "LEG": "some value " + tc.role,
			})
			eq("EXPOSE", only(build, "EXPOSE", 0).Words, []string{"80", "443", "8080"})
			eq("USER", only(build, "USER", 0).Words, []string{roleOr("nobody") + ":x"})

			// The second stage sees none of the first stage's ARGs.
			eq("COPY --from", only(final, "COPY", 0).Flags["from"], "build")
			eq("second stage LABEL", final.label("role")+"|"+final.label("def"), "x|")
			eq("Undefined", d.Undefined, tc.undefined)
		})
	}
}

func TestReadDockerfileErrors(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		args       map[string]string
		want       string
	}{
		{"unused build arg", "FROM scratch\nARG ROLE\n", map[string]string{"ROLE": "x", "OTHER": "y"}, "--build-arg OTHER: no ARG declares it"},
		{"build arg for the global scope only", "ARG ROLE\nFROM scratch\n", map[string]string{"ROLE": "x"}, ""},
		{"pattern substitution", "FROM scratch\nARG X=ab\nWORKDIR /${X/a/b}\n", nil, "not reproduced here"},
		{"required variable", "FROM scratch\nARG X\nWORKDIR /${X:?set X}\n", nil, "X: set X"},
		{"required and set", "FROM scratch\nARG X=1\nWORKDIR /${X:?set X}\n", nil, ""},
		{"unknown instruction", "FROM scratch\nADD a b\n", nil, "instruction ADD is not one"},
		{"unterminated quote", "FROM scratch\nLABEL a=\"b\n", nil, "unterminated"},
		{"unterminated brace", "FROM scratch\nWORKDIR /${X\n", nil, "unterminated ${"},
		{"instruction before FROM", "ENV A=1\nFROM scratch\n", nil, "ENV before FROM"},
		{"no FROM", "ARG A\n", nil, "no FROM"},
		{"stage on a stage", "FROM scratch AS a\nFROM a\n", nil, "not reproduced here"},
		{"LABEL without a value", "FROM scratch\nLABEL a\n", nil, "is not KEY=value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readDockerfile("Dockerfile", strings.NewReader(tc.file), tc.args)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("error %v, want none", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestSubstituterLex checks the lexer's modes on one text.
func TestSubstituterLex(t *testing.T) {
	vars := map[string]string{"A": "x y", "E": ""}
	s := &substituter{undefined: map[string]bool{}, lookup: func(k string) (string, bool) { v, ok := vars[k]; return v, ok }}
	for _, tc := range []struct {
		mode lexMode
		want []string
	}{
		{splitAll, []string{"p", "x", "y", "x y", "q r", `\$A`}},
		{splitWords, []string{"p", "x y", "x y", "q r", `\$A`}},
		{oneWord, []string{`p x y x y q r \$A`}},
	} {
		got, err := s.lex(`p $A "$A" 'q r' '\$A'$E$B`, tc.mode)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("mode %d: %q, want %q", tc.mode, got, tc.want)
		}
	}
	if !s.undefined["B"] || s.undefined["E"] || len(s.undefined) != 1 {
		t.Errorf("undefined %v, want only B (E is set, to empty)", s.undefined)
	}
}
