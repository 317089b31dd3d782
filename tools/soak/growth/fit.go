// Package growth judges whether the soak's samples grow: a least-squares
// line through each node's series after a warm-up, its slope per hour
// against a bound per series.
//
// A series passes when its fitted slope is at most its bound. A slope is a
// trend, not a peak: a value that rises and falls back (a GC cycle, a burst
// of requests in flight) fits flat, one that climbs all along does not.
// Bounds are set per series (Bounds); a series with too few samples after
// the warm-up fails, since nothing can be said of it.
package growth

import (
	"errors"
	"math"
)

// Fit is the least-squares line y = Intercept + Slope·x through a series'
// points.
type Fit struct {
	Slope     float64 // change of y per unit of x
	Intercept float64 // y at x = 0
	// StdErr is the slope's standard error (NaN for two points): how far
	// the slope may be off by the scatter of the points alone.
	StdErr float64
	N      int // points fitted
}

// MinPoints is how many points a fit needs.
const MinPoints = 2

// ErrTooFew is returned for fewer than MinPoints points, or points that all
// share one x.
var ErrTooFew = errors.New("too few points to fit a line")

// LeastSquares fits a line through the points (xs[i], ys[i]), leaving out
// those where either is NaN.
func LeastSquares(xs, ys []float64) (Fit, error) {
	if len(xs) != len(ys) {
		return Fit{}, errors.New("least squares: xs and ys differ in length")
	}
	var n, sx, sy float64
	for i := range xs {
		if math.IsNaN(xs[i]) || math.IsNaN(ys[i]) {
			continue
		}
		n++
		sx += xs[i]
		sy += ys[i]
	}
	if n < MinPoints {
		return Fit{N: int(n)}, ErrTooFew
	}
	mx, my := sx/n, sy/n
	// Centered sums: no cancellation when x is large (hours) and y huge
	// (bytes).
	var sxx, sxy float64
	for i := range xs {
		if math.IsNaN(xs[i]) || math.IsNaN(ys[i]) {
			continue
		}
		dx := xs[i] - mx
		sxx += dx * dx
		sxy += dx * (ys[i] - my)
	}
	if sxx == 0 {
		return Fit{N: int(n)}, ErrTooFew
	}
	f := Fit{Slope: sxy / sxx, N: int(n)}
	f.Intercept = my - f.Slope*mx
	f.StdErr = math.NaN()
	if n > 2 {
		var sse float64
		for i := range xs {
			if math.IsNaN(xs[i]) || math.IsNaN(ys[i]) {
				continue
			}
			r := ys[i] - (f.Intercept + f.Slope*xs[i])
			sse += r * r
		}
		f.StdErr = math.Sqrt(sse / (n - 2) / sxx)
	}
	return f, nil
}
