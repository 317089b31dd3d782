package mongo

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/beds-project/beds/shared/store"
	"github.com/beds-project/beds/shared/template"
	"github.com/beds-project/beds/shared/wire"
)

// FuzzFilter feeds a filter, and a like pattern on its own, through what a
// node does before it touches MongoDB: store.Build with a template, then
// the adapter's translation. Whatever the input, nothing panics, every
// refusal is a contract error with a request code, every query document
// encodes and holds as keys only the template's stored names and fixed
// operators, and a like pattern becomes an anchored regular expression
// that matches exactly what SQL LIKE (likeMatch, below) matches.
func FuzzFilter(f *testing.F) {
	for _, seed := range []struct{ filter, like string }{
		{`{"name": "Ann"}`, "A%"},
		{`{"age": {"gte": 1, "lt": 9}, "active": true}`, "%a%"},
		{`{"or": [{"age": 1}, {"and": [{"name": {"like": "z_"}}, {"nick": null}]}]}`, "a_c"},
		{`{"name": {"in": ["a", "b"]}, "score": {"nin": [1.5]}}`, `50\%`},
		{`{"born": {"lt": "2020-01-01T00:00:00Z"}, "meta": {"null": false}}`, `a\_b`},
		{`{"name": {"like": "a\u0000%"}}`, "a\x00%"},
		{`{"$where": "1"}`, `end\`},
		{`{"name": {"$ne": 1}}`, `\é`},
		{`{"id": {"ne": null}}`, ".*"},
		{`{"name": {"like": ".*(?i)"}}`, "a+b(c)|[d]{2}^$?"},
		{`{"nick": {"like": "日本%語"}}`, "日本%語"},
		{`[1]`, ""},
		{`{"age": 1e999}`, "%"},
		{`{"and": []}`, "\n%\n"},
		{`{"name": {"like": 5}}`, "\xff\xfe%"},
	} {
		f.Add(seed.filter, seed.like)
	}
	tpl := testTemplate(f, "people")
	stored := map[string]bool{}
	for _, fl := range tpl.Fields {
		stored[fl.Stored] = true
	}
	f.Fuzz(func(t *testing.T, filter, like string) {
		if doc, ok := translate(t, tpl, filter); ok {
			checkFilterDoc(t, doc, stored)
		}

		lit, _ := json.Marshal(like) // invalid UTF-8 becomes U+FFFD, as a request's would
		doc, ok := translate(t, tpl, `{"name": {"like": `+string(lit)+`}}`)
		if !ok {
			return
		}
		checkFilterDoc(t, doc, stored)
		re := doc[0].Value.(bson.D)[0].Value.(bson.Regex)
		var pattern string
		if err := json.Unmarshal(lit, &pattern); err != nil {
			t.Fatal(err)
		}
		checkLike(t, pattern, re)
	})
}

// translate builds a read with filter and translates it; ok is false when
// either step refused it, as it must: with a request code.
func translate(t *testing.T, tpl *template.Template, filter string) (bson.D, bool) {
	q, err := store.Build(tpl, "ev", &wire.Request{Template: tpl.Name, Op: wire.OpRead, Filter: json.RawMessage(filter)}, store.DefaultLimits)
	if err != nil {
		requestCode(t, "Build", err)
		return nil, false
	}
	doc, err := filterOf(q)
	if err != nil {
		requestCode(t, "filterOf", err)
		return nil, false
	}
	if _, err := bson.Marshal(doc); err != nil {
		t.Fatalf("filter %q: the query document does not encode: %v", filter, err)
	}
	return doc, true
}

func requestCode(t *testing.T, step string, err error) {
	t.Helper()
	we, ok := err.(*wire.Error)
	if !ok || we.Code.Class() != wire.ClassRequest {
		t.Fatalf("%s refused with %T %v, want a *wire.Error with a request code", step, err, err)
	}
}

// filterKeys are the only operator keys a query document may hold.
var filterKeys = map[string]bool{"$and": true, "$or": true, "$eq": true, "$ne": true, "$gt": true, "$gte": true,
	"$lt": true, "$lte": true, "$in": true, "$nin": true, "$regex": true}

// checkFilterDoc walks the structure of a query document: and/or lists of
// documents, each other key a stored name over one fixed operator.
func checkFilterDoc(t *testing.T, doc bson.D, stored map[string]bool) {
	t.Helper()
	for _, e := range doc {
		switch {
		case e.Key == "$and" || e.Key == "$or":
			list, ok := e.Value.(bson.A)
			if !ok || len(list) == 0 {
				t.Fatalf("%s holds %#v", e.Key, e.Value)
			}
			for _, sub := range list {
				checkFilterDoc(t, sub.(bson.D), stored)
			}
		case stored[e.Key]:
			cond, ok := e.Value.(bson.D)
			if !ok || len(cond) != 1 || !filterKeys[cond[0].Key] || cond[0].Key == "$and" || cond[0].Key == "$or" {
				t.Fatalf("field %s holds %#v, want one operator", e.Key, e.Value)
			}
		default:
			t.Fatalf("key %q is neither a stored name nor $and/$or", e.Key)
		}
	}
}

// checkLike checks the regular expression of like pattern p: it compiles,
// is anchored at both ends, and agrees with likeMatch on strings made from
// the pattern.
func checkLike(t *testing.T, p string, re bson.Regex) {
	t.Helper()
	if re.Options != "s" || !strings.HasPrefix(re.Pattern, "^") || !strings.HasSuffix(re.Pattern, `\z`) {
		t.Fatalf("like %q: regex %q options %q, want ^...\\z with s", p, re.Pattern, re.Options)
	}
	rx, err := regexp.Compile("(?s)" + re.Pattern)
	if err != nil {
		t.Fatalf("like %q: regex %q does not compile: %v", p, re.Pattern, err)
	}
	for _, s := range likeSamples(p) {
		if got, want := rx.MatchString(s), likeMatch(p, s); got != want {
			t.Fatalf("like %q (regex %q) on %q: regex says %v, LIKE says %v", p, re.Pattern, s, got, want)
		}
	}
}

// likeSamples returns strings near what p matches: its wildcards filled
// in several ways, the pattern itself, and each with a character more or
// less.
func likeSamples(p string) []string {
	fill := func(any, one string) string {
		var b strings.Builder
		for _, tk := range likeTokens(p) {
			switch tk.kind {
			case '%':
				b.WriteString(any)
			case '_':
				b.WriteString(one)
			default:
				b.WriteRune(tk.r)
			}
		}
		return b.String()
	}
	base := []string{fill("", "x"), fill("ab\n%", "é"), fill("_", "\n"), fill("%", "%"), p, ""}
	var out []string
	for _, s := range base {
		out = append(out, s, s+"x", "x"+s, s+"\n")
		if _, n := utf8.DecodeLastRuneInString(s); n > 0 {
			out = append(out, s[:len(s)-n])
		}
	}
	return out
}

// likeToken is one element of a LIKE pattern: % (any run), _ (one
// character) or a literal character (kind 0).
type likeToken struct {
	kind byte
	r    rune
}

// likeTokens splits p by the rules of the package doc: % and _ are
// wildcards, a backslash makes the next character literal, and a trailing
// backslash is itself literal.
func likeTokens(p string) []likeToken {
	var out []likeToken
	rs := []rune(p)
	for i := 0; i < len(rs); i++ {
		switch rs[i] {
		case '%', '_':
			out = append(out, likeToken{kind: byte(rs[i])})
		case '\\':
			if i+1 < len(rs) {
				i++
			}
			out = append(out, likeToken{r: rs[i]})
		default:
			out = append(out, likeToken{r: rs[i]})
		}
	}
	return out
}

// likeMatch is SQL LIKE, case-sensitive, by characters: a reference for
// the regular expressions, written without them.
func likeMatch(p, s string) bool {
	toks, rs := likeTokens(p), []rune(s)
	// m[j] : the tokens so far match rs[:j].
	m, next := make([]bool, len(rs)+1), make([]bool, len(rs)+1)
	m[0] = true
	for _, tk := range toks {
		for j := range m {
			switch tk.kind {
			case '%':
				next[j] = m[j] || (j > 0 && next[j-1])
			case '_':
				next[j] = j > 0 && m[j-1]
			default:
				next[j] = j > 0 && m[j-1] && rs[j-1] == tk.r
			}
		}
		m, next = next, m
	}
	return m[len(rs)]
}

func TestLikeMatch(t *testing.T) {
	for _, tc := range []struct {
		p, s string
		want bool
	}{
		{"a%", "abc", true}, {"a%", "ba", false}, {"%", "", true}, {"_", "", false}, {"_", "é", true},
		{`a\%`, "a%", true}, {`a\%`, "ab", false}, {`end\`, `end\`, true}, {"a_c", "a\nc", true},
		{"%a%b", "xaxb", true}, {"%a%b", "xaxbx", false}, {"", "", true}, {"", "a", false},
	} {
		if got := likeMatch(tc.p, tc.s); got != tc.want {
			t.Errorf("likeMatch(%q, %q) = %v", tc.p, tc.s, got)
		}
	}
}
