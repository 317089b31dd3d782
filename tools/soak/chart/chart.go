// Package chart draws the soak's samples: one panel per series, one line
// per node over the run's minutes, and each node's fitted line dashed over
// the samples it was fitted to. It writes SVG or PNG.
package chart

import (
	"cmp"
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/beds-project/beds/tools/soak/growth"
	"github.com/beds-project/beds/tools/soak/sample"
)

// panels are the series drawn, in reading order, with their titles and the
// unit their values are divided by.
var panels = []struct {
	series sample.Series
	title  string
	unit   float64
}{
	{sample.RSS, "RSS (MiB)", growth.MiB},
	{sample.HeapInuse, "Go heap in use (MiB)", growth.MiB},
	{sample.Goroutines, "goroutines", 1},
	{sample.FDs, "open file descriptors", 1},
	{sample.ConnsAMQP, "TCP connections to RabbitMQ (5672)", 1},
	{sample.ConnsMariaDB, "TCP connections to MariaDB (3306)", 1},
	{sample.ConnsMongo, "TCP connections to MongoDB (27017)", 1},
	{sample.ConnsOther, "other TCP connections", 1},
}

const cols = 2

// Format is an image format Write can write.
type Format int

// The formats.
const (
	SVG Format = iota
	PNG
)

// FormatOf is the format a file name's extension asks for (.svg or .png).
func FormatOf(path string) (Format, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".svg":
		return SVG, nil
	case ".png":
		return PNG, nil
	}
	return 0, fmt.Errorf("plot %s: want a .svg or .png file", path)
}

// WriteFile draws samples and their judgement r into an SVG or PNG file
// at path, as its extension says.
func WriteFile(path string, samples []sample.Sample, r *growth.Result) error {
	format, err := FormatOf(path)
	if err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := Write(f, format, samples, r); err != nil {
		f.Close()
		return fmt.Errorf("plot %s: %w", path, err)
	}
	return f.Close()
}

// Write draws samples and their judgement r to w in format.
func Write(w io.Writer, format Format, samples []sample.Sample, r *growth.Result) error {
	rows := (len(panels) + cols - 1) / cols
	plots := make([][]*plot.Plot, rows)
	for i := range plots {
		plots[i] = make([]*plot.Plot, cols)
	}
	for i, pn := range panels {
		p, err := panel(samples, r, pn.series, pn.title, pn.unit, i == 0)
		if err != nil {
			return err
		}
		plots[i/cols][i%cols] = p
	}
	width, height := 30*vg.Centimeter, vg.Length(rows)*7*vg.Centimeter
	var img vg.CanvasWriterTo
	switch format {
	case SVG:
		img = vgsvg.New(width, height)
	case PNG:
		img = vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(width, height), vgimg.UseDPI(96))}
	default:
		return fmt.Errorf("unknown format %d", format)
	}
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: rows, Cols: cols, PadX: 8 * vg.Millimeter, PadY: 6 * vg.Millimeter,
		PadTop: 3 * vg.Millimeter, PadBottom: 3 * vg.Millimeter, PadLeft: 3 * vg.Millimeter, PadRight: 3 * vg.Millimeter}
	canvases := plot.Align(plots, tiles, dc)
	for j := range plots {
		for i, p := range plots[j] {
			if p != nil {
				p.Draw(canvases[j][i])
			}
		}
	}
	_, err := img.WriteTo(w)
	return err
}

// panel is one series' plot: a line per node, its fit dashed.
func panel(samples []sample.Sample, r *growth.Result, k sample.Series, title string, unit float64, legend bool) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "minutes"
	p.Y.Min = 0
	p.Legend.Top = true
	p.Legend.Left = true
	span := r.End.Sub(r.Start).Minutes()
	for ni, n := range r.Nodes {
		c := plotutil.Color(ni)
		for _, seg := range segments(samples, n.Name, k, r, unit) {
			l, err := plotter.NewLine(seg)
			if err != nil {
				return nil, fmt.Errorf("%s %s: %w", n.Name, k, err)
			}
			l.Color = c
			l.Width = vg.Points(1)
			p.Add(l)
		}
		// A one-sample segment draws nothing: the points show it.
		v := n.Verdicts[k]
		if v.Fit.N >= growth.MinFitted && !math.IsNaN(v.Fit.Slope) {
			x0, x1 := growth.Hours(r.FitFrom, r.Start), growth.Hours(r.End, r.Start)
			fit, err := plotter.NewLine(plotter.XYs{
				{X: x0 * 60, Y: (v.Fit.Intercept + v.Fit.Slope*x0) / unit},
				{X: x1 * 60, Y: (v.Fit.Intercept + v.Fit.Slope*x1) / unit},
			})
			if err != nil {
				return nil, fmt.Errorf("%s %s fit: %w", n.Name, k, err)
			}
			fit.Color = c
			fit.Width = vg.Points(1.5)
			fit.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
			p.Add(fit)
		}
		if legend {
			sw, err := plotter.NewLine(plotter.XYs{{}, {X: 1}})
			if err != nil {
				return nil, err
			}
			sw.Color = c
			sw.Width = vg.Points(2)
			p.Legend.Add(n.Name, sw)
		}
	}
	p.X.Min, p.X.Max = 0, math.Max(span, 1.0/60)
	// Keep flat series off the frame: some room above the highest value.
	if p.Y.Max <= p.Y.Min {
		p.Y.Max = p.Y.Min + 1
	}
	p.Y.Max += (p.Y.Max - p.Y.Min) * 0.15
	if legend {
		// Room above the lines for the legend.
		p.Y.Max += p.Y.Max - p.Y.Min
	}
	// Where the warm-up ends: the fits start there.
	x := r.FitFrom.Sub(r.Start).Minutes()
	mark, err := plotter.NewLine(plotter.XYs{{X: x, Y: p.Y.Min}, {X: x, Y: p.Y.Max}})
	if err != nil {
		return nil, err
	}
	mark.Color = color.Gray{Y: 160}
	mark.Width = vg.Points(0.75)
	mark.Dashes = []vg.Length{vg.Points(2), vg.Points(2)}
	p.Add(mark)
	if legend {
		p.Legend.Add("end of the warm-up", mark)
	}
	return p, nil
}

// segments are node's values of series k as lines over minutes since the
// start, broken where a value is missing.
func segments(samples []sample.Sample, node string, k sample.Series, r *growth.Result, unit float64) []plotter.XYs {
	var out []plotter.XYs
	var cur plotter.XYs
	for _, s := range samples {
		if s.Node != node {
			continue
		}
		y := s.Values[k]
		if math.IsNaN(y) || math.IsInf(y, 0) {
			if len(cur) > 0 {
				out = append(out, cur)
				cur = nil
			}
			continue
		}
		cur = append(cur, plotter.XY{X: s.Time.Sub(r.Start).Minutes(), Y: y / unit})
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	for _, seg := range out {
		slices.SortStableFunc(seg, func(a, b plotter.XY) int { return cmp.Compare(a.X, b.X) })
	}
	return out
}
