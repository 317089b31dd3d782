package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// DecodeRequest parses a request body. It rejects bodies that are not one
// JSON object of the contract's shape, unknown or repeated top-level keys
// (names are exact: "op", never "OP") and invalid UTF-8, and checks only
// what needs no template. The request's Filter and Data alias body.
func DecodeRequest(body []byte) (*Request, error) {
	var r Request
	if err := r.Decode(body); err != nil {
		return nil, err
	}
	return &r, nil
}

// Decode is DecodeRequest into r, which it overwrites; after an error r is
// the empty Request. It reads the body as a stream of tokens and keeps
// filter and data as slices of body, so a point read's decoding allocates
// only its template name.
func (r *Request) Decode(body []byte) error {
	*r = Request{}
	if len(bytes.TrimSpace(body)) == 0 {
		return Errorf(CodeBadRequest, "empty body: a request is a JSON object")
	}
	if !utf8.Valid(body) {
		return Errorf(CodeBadRequest, "body is not valid UTF-8")
	}
	d := decoders.Get().(*tokens)
	d.src.Reset(body)
	d.dec.Reset(&d.src)
	err := r.decode(&d.dec, body)
	d.src.Reset(nil)
	d.dec.Reset(&d.src)
	decoders.Put(d)
	if err != nil {
		*r = Request{}
		return err
	}
	return r.Check()
}

// tokens is a reusable token reader: jsontext keeps its buffer across
// Reset, so a pooled one reads a request without allocating.
type tokens struct {
	src bytes.Reader
	dec jsontext.Decoder
}

// decoders holds idle token readers; one holds no request data once put
// back.
var decoders = sync.Pool{New: func() any { return new(tokens) }}

func (r *Request) decode(dec *jsontext.Decoder, body []byte) error {
	tok, err := dec.ReadToken()
	if err != nil {
		return invalid(err)
	}
	switch tok.Kind() {
	case 'n': // null: no keys at all, which Check reports
	case '{':
		if err := r.members(dec, body); err != nil {
			return err
		}
	default:
		return Errorf(CodeBadRequest, "body is not a valid request: it must be a JSON object, not %s", kindName(tok.Kind()))
	}
	if _, err := dec.ReadToken(); !errors.Is(err, io.EOF) {
		return Errorf(CodeBadRequest, "body holds more than one JSON value")
	}
	return nil
}

// members reads the request object's members after its '{'.
func (r *Request) members(dec *jsontext.Decoder, body []byte) error {
	for {
		name, err := dec.ReadToken()
		if err != nil {
			return invalid(err)
		}
		if name.Kind() == '}' {
			return nil
		}
		switch name.String() {
		case "template":
			if r.Template, err = str(dec, "template"); err != nil {
				return err
			}
		case "op":
			tok, err := dec.ReadToken()
			if err != nil {
				return invalid(err)
			}
			switch tok.Kind() {
			case '"':
				r.Op = internOp(tok.String())
			case 'n':
			default:
				return Errorf(CodeBadRequest, "body is not a valid request: op must be a string, not %s", kindName(tok.Kind()))
			}
		case "filter":
			if r.Filter, err = raw(dec, body); err != nil {
				return err
			}
		case "data":
			if r.Data, err = raw(dec, body); err != nil {
				return err
			}
		case "fields":
			if r.Fields, err = strs(dec, "fields"); err != nil {
				return err
			}
		case "sort":
			if r.Sort, err = strs(dec, "sort"); err != nil {
				return err
			}
		case "limit":
			if r.Limit, err = integer(dec, "limit"); err != nil {
				return err
			}
		case "offset":
			if r.Offset, err = integer(dec, "offset"); err != nil {
				return err
			}
		case "include":
			if r.Include, err = strs(dec, "include"); err != nil {
				return err
			}
		case "event":
			if r.Event, err = str(dec, "event"); err != nil {
				return err
			}
		case "record":
			if r.Record, err = boolean(dec, "record"); err != nil {
				return err
			}
		case "batch":
			if r.Batch, err = batch(dec, body); err != nil {
				return err
			}
		default:
			return Errorf(CodeBadRequest, "body is not a valid request: unknown field %q (known: template, op, filter, fields, sort, limit, offset, data, include, batch, event, record)", name.String())
		}
	}
}

// batch reads a batch's array of requests; null is no batch. An item is
// an ordinary request: it may not be a batch itself. Items are checked
// here like any request, so a reply can name the item at fault.
func batch(dec *jsontext.Decoder, body []byte) ([]Request, error) {
	tok, err := dec.ReadToken()
	if err != nil {
		return nil, invalid(err)
	}
	switch tok.Kind() {
	case 'n':
		return nil, nil
	case '[':
	default:
		return nil, &Error{Code: CodeBadRequest, Message: fmt.Sprintf("batch must be an array of requests, not %s", kindName(tok.Kind())), Field: "batch"}
	}
	out := []Request{}
	for {
		tok, err := dec.ReadToken()
		if err != nil {
			return nil, invalid(err)
		}
		switch tok.Kind() {
		case ']':
			return out, nil
		case '{':
		default:
			return nil, &Error{Code: CodeBadRequest, Message: fmt.Sprintf("batch[%d] must be a request object, not %s", len(out), kindName(tok.Kind())), Field: "batch"}
		}
		if len(out) >= MaxBatch {
			return nil, &Error{Code: CodeTooLarge, Message: fmt.Sprintf("batch holds more than %d requests", MaxBatch), Field: "batch"}
		}
		out = append(out, Request{})
		item := &out[len(out)-1]
		if err := item.members(dec, body); err != nil {
			return nil, itemError(len(out)-1, err)
		}
		if item.Op == OpBatch || item.Batch != nil {
			return nil, &Error{Code: CodeBadRequest, Message: fmt.Sprintf("batch[%d] is a batch: batches do not nest", len(out)-1), Field: "batch"}
		}
		if err := item.Check(); err != nil {
			return nil, itemError(len(out)-1, err)
		}
	}
}

// MaxBatch bounds the items of a batch any node decodes, whatever its
// configured limit (limits.max_batch, which is lower): decoding stops at
// the first item past it.
const MaxBatch = 10000

// itemError says which batch item err is about.
func itemError(i int, err error) error {
	var e *Error
	if !errors.As(err, &e) {
		return err
	}
	out := *e
	out.Message = fmt.Sprintf("batch[%d]: %s", i, e.Message)
	return &out
}

// boolean reads a boolean member; null is false.
func boolean(dec *jsontext.Decoder, name string) (bool, error) {
	tok, err := dec.ReadToken()
	if err != nil {
		return false, invalid(err)
	}
	switch tok.Kind() {
	case 'n':
		return false, nil
	case 't', 'f':
		return tok.Bool(), nil
	}
	return false, Errorf(CodeBadRequest, "body is not a valid request: %s must be true or false, not %s", name, kindName(tok.Kind()))
}

// internOp returns the constant for a known op, so decoding one costs no
// allocation; an unknown op is kept as sent, for Check to report.
func internOp(s string) Op {
	for _, op := range [...]Op{OpRead, OpCreate, OpUpdate, OpDelete, OpCount, OpPing, OpBatch, OpLineage} {
		if s == string(op) {
			return op
		}
	}
	for _, op := range [...]Op{OpWhoami, OpLogin, OpRefresh, OpLogout, OpRevoke, OpSessions, OpRegister, OpPasswd, OpRoles, OpDisable, OpEnable, OpUser} {
		if s == string(op) {
			return op
		}
	}
	return Op(strings.Clone(s))
}

// str reads a string member; null is the empty string.
func str(dec *jsontext.Decoder, name string) (string, error) {
	tok, err := dec.ReadToken()
	if err != nil {
		return "", invalid(err)
	}
	switch tok.Kind() {
	case '"':
		return tok.String(), nil
	case 'n':
		return "", nil
	}
	return "", Errorf(CodeBadRequest, "body is not a valid request: %s must be a string, not %s", name, kindName(tok.Kind()))
}

// strs reads an array of strings; null is no array.
func strs(dec *jsontext.Decoder, name string) ([]string, error) {
	tok, err := dec.ReadToken()
	if err != nil {
		return nil, invalid(err)
	}
	switch tok.Kind() {
	case 'n':
		return nil, nil
	case '[':
	default:
		return nil, Errorf(CodeBadRequest, "body is not a valid request: %s must be an array of strings, not %s", name, kindName(tok.Kind()))
	}
	var out []string
	for {
		tok, err := dec.ReadToken()
		if err != nil {
			return nil, invalid(err)
		}
		switch tok.Kind() {
		case ']':
			return out, nil
		case '"':
			out = append(out, tok.String())
		default:
			return nil, Errorf(CodeBadRequest, "body is not a valid request: %s must be an array of strings, not hold %s", name, kindName(tok.Kind()))
		}
	}
}

// integer reads an integer member; null is zero.
func integer(dec *jsontext.Decoder, name string) (int, error) {
	tok, err := dec.ReadToken()
	if err != nil {
		return 0, invalid(err)
	}
	switch tok.Kind() {
	case 'n':
		return 0, nil
	case '0':
		n, err := tok.Int()
		if err != nil || int64(int(n)) != n {
			return 0, Errorf(CodeBadRequest, "body is not a valid request: %s must be an integer, not %s", name, tok.String())
		}
		return int(n), nil
	}
	return 0, Errorf(CodeBadRequest, "body is not a valid request: %s must be an integer, not %s", name, kindName(tok.Kind()))
}

// raw reads any JSON value and returns its text as a slice of body; null
// is no value.
func raw(dec *jsontext.Decoder, body []byte) ([]byte, error) {
	v, err := dec.ReadValue()
	if err != nil {
		return nil, invalid(err)
	}
	if v.Kind() == 'n' {
		return nil, nil
	}
	end := int(dec.InputOffset())
	return body[end-len(v) : end : end], nil
}

// invalid reports a syntax error in the body.
func invalid(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return Errorf(CodeBadRequest, "body is not a valid request: truncated JSON")
	}
	return Errorf(CodeBadRequest, "body is not a valid request: %s", strings.TrimPrefix(err.Error(), "jsontext: "))
}

// kindName names a JSON token kind for a message.
func kindName(k jsontext.Kind) string {
	switch k {
	case 'n':
		return "null"
	case 'f', 't':
		return "a boolean"
	case '"':
		return "a string"
	case '0':
		return "a number"
	case '{':
		return "an object"
	case '[':
		return "an array"
	}
	return "nothing"
}

// DecodeReply parses a reply body as a client receives it. Numbers in rows
// and keys decode as json.Number, so no integer loses precision. A reply
// that is not ok is returned with its *Error as the error (CodeInternal when
// it carries none); a body that is not a reply returns a plain error.
func DecodeReply(body []byte) (*Reply, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var r Reply
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("decode reply: %w", err)
	}
	if !r.OK {
		if r.Error == nil {
			return &r, Errorf(CodeInternal, "reply not ok and without error")
		}
		return &r, r.Error
	}
	return &r, nil
}
