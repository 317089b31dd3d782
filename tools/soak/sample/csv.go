package sample

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"time"
)

// header is the CSV's first line: time, node, then every series.
func header() []string {
	return append([]string{"time", "node"}, seriesNames[:]...)
}

// Writer writes samples as CSV: a header line, then one line per sample,
// time in RFC 3339 with nanoseconds (UTC), a NaN value as an empty cell.
type Writer struct {
	w      *csv.Writer
	header bool
}

// NewWriter returns a Writer to w; the header is written with the first
// sample, or by Flush.
func NewWriter(w io.Writer) *Writer { return &Writer{w: csv.NewWriter(w)} }

// Write writes one sample.
func (w *Writer) Write(s Sample) error {
	if !w.header {
		if err := w.w.Write(header()); err != nil {
			return err
		}
		w.header = true
	}
	rec := make([]string, 0, 2+NumSeries)
	rec = append(rec, s.Time.UTC().Format(time.RFC3339Nano), s.Node)
	for _, v := range s.Values {
		if math.IsNaN(v) {
			rec = append(rec, "")
		} else {
			rec = append(rec, strconv.FormatFloat(v, 'g', -1, 64))
		}
	}
	return w.w.Write(rec)
}

// Flush writes what is buffered (the header, if no sample was written)
// and returns the first error of any write.
func (w *Writer) Flush() error {
	if !w.header {
		if err := w.w.Write(header()); err != nil {
			return err
		}
		w.header = true
	}
	w.w.Flush()
	return w.w.Error()
}

// Read reads samples that Writer wrote.
func Read(r io.Reader) ([]Sample, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = 2 + int(NumSeries)
	head, err := cr.Read()
	if err == io.EOF {
		return nil, fmt.Errorf("samples: empty, want the header %v", header())
	}
	if err != nil {
		return nil, fmt.Errorf("samples: %w", err)
	}
	if !slices.Equal(head, header()) {
		return nil, fmt.Errorf("samples: header %v, want %v", head, header())
	}
	var out []Sample
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("samples: %w", err)
		}
		line, _ := cr.FieldPos(0)
		t, err := time.Parse(time.RFC3339Nano, rec[0])
		if err != nil {
			return nil, fmt.Errorf("samples line %d: %w", line, err)
		}
		s := Sample{Time: t, Node: rec[1]}
		for i, cell := range rec[2:] {
			if cell == "" {
				s.Values[i] = math.NaN()
				continue
			}
			if s.Values[i], err = strconv.ParseFloat(cell, 64); err != nil {
				return nil, fmt.Errorf("samples line %d, %s: %w", line, Series(i), err)
			}
		}
		out = append(out, s)
	}
}
