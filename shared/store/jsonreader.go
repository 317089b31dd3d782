package store

import (
	"bytes"
	"errors"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/beds-project/beds/shared/wire"
)

// doc reads one JSON document of a request, its filter or its data, token
// by token, so that Build turns it into a Query in one pass without an
// intermediate tree. Numbers are read as their literal text, sliced from
// the document, and parsed once for the field they are compared with.
type doc struct {
	src  bytes.Reader
	dec  jsontext.Decoder
	text []byte
	what string // "filter" or "data", for messages
}

// docs holds idle readers: jsontext keeps its buffer across Reset.
var docs = sync.Pool{New: func() any { return new(doc) }}

func openDoc(text []byte, what string) *doc {
	d := docs.Get().(*doc)
	d.text, d.what = text, what
	d.src.Reset(text)
	d.dec.Reset(&d.src)
	return d
}

// close returns d to the pool, holding nothing of the request.
func (d *doc) close() {
	d.text = nil
	d.src.Reset(nil)
	d.dec.Reset(&d.src)
	docs.Put(d)
}

// peek returns the kind of the next token, 0 at the end or on a syntax
// error (which the next read reports).
func (d *doc) peek() jsontext.Kind { return d.dec.PeekKind() }

// token reads the next token; the token is valid until the next read.
func (d *doc) token() (jsontext.Token, error) {
	tok, err := d.dec.ReadToken()
	if err != nil {
		return tok, d.invalid(err)
	}
	return tok, nil
}

// skip reads past the next value, whatever it is.
func (d *doc) skip() error {
	if err := d.dec.SkipValue(); err != nil {
		return d.invalid(err)
	}
	return nil
}

// open reads the next token if it starts a value of kind k ('{' or '['),
// and reports whether it did; err is a syntax error at the next token.
func (d *doc) open(k jsontext.Kind) (ok bool, err error) {
	switch d.peek() {
	case k:
		_, err = d.token()
		return err == nil, err
	case 0:
		_, err = d.token()
		return false, err
	}
	return false, nil
}

// end checks that nothing follows the document's value.
func (d *doc) end() error {
	if _, err := d.dec.ReadToken(); !errors.Is(err, io.EOF) {
		if err == nil {
			err = errors.New("more than one JSON value")
		}
		return d.invalid(err)
	}
	return nil
}

func (d *doc) invalid(err error) error {
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	msg := strings.TrimPrefix(err.Error(), "jsontext: ")
	return wire.FieldError(wire.CodeBadRequest, d.what, "%s is not valid JSON: %s", d.what, msg)
}

// scalar is one JSON value where a field's value belongs. For a string it
// holds the string, for a number its literal text; an object or array is
// skipped and only its kind kept, for the message that rejects it.
type scalar struct {
	kind jsontext.Kind
	str  string
	num  []byte
}

func (d *doc) scalar() (scalar, error) {
	switch k := d.peek(); k {
	case '{', '[':
		return scalar{kind: k}, d.skip()
	case '0':
		v, err := d.dec.ReadValue()
		if err != nil {
			return scalar{}, d.invalid(err)
		}
		end := int(d.dec.InputOffset())
		return scalar{kind: '0', num: d.text[end-len(v) : end]}, nil
	}
	tok, err := d.token()
	if err != nil {
		return scalar{}, err
	}
	s := scalar{kind: tok.Kind()}
	if s.kind == '"' {
		s.str = tok.String()
	}
	return s, nil
}

// value reads any JSON value as plain Go values, the form a json field is
// bound in: nil, bool, string, int64 (an integer that fits), float64,
// []any and map[string]any.
func (d *doc) value() (any, error) {
	switch d.peek() {
	case '{':
		if _, err := d.token(); err != nil {
			return nil, err
		}
		m := map[string]any{}
		for d.peek() != '}' {
			name, err := d.token()
			if err != nil {
				return nil, err
			}
			key := name.String()
			if m[key], err = d.value(); err != nil {
				return nil, err
			}
		}
		_, err := d.token()
		return m, err
	case '[':
		if _, err := d.token(); err != nil {
			return nil, err
		}
		list := []any{}
		for d.peek() != ']' {
			v, err := d.value()
			if err != nil {
				return nil, err
			}
			list = append(list, v)
		}
		_, err := d.token()
		return list, err
	}
	s, err := d.scalar()
	if err != nil {
		return nil, err
	}
	switch s.kind {
	case '"':
		return s.str, nil
	case 't':
		return true, nil
	case 'f':
		return false, nil
	case '0':
		if i, err := strconv.ParseInt(string(s.num), 10, 64); err == nil {
			return i, nil
		}
		f, err := strconv.ParseFloat(string(s.num), 64)
		if err != nil {
			return nil, wire.FieldError(wire.CodeBadValue, d.what, "%s holds a number out of range: %s", d.what, s.num)
		}
		return f, nil
	}
	return nil, nil
}
