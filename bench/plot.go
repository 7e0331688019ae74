package bench

// latency.png: handoff latency against payload size, both axes
// log-scale, drawn with gonum/plot: one unit per axis (payload in bytes,
// labelled at every measured size; latency in µs, labelled at every
// decade with the same precision), a legend, and a title naming the
// machine and the date of the run.

import (
	"fmt"
	"image/color"
	"math"
	"slices"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

type series struct {
	name   string
	col    color.RGBA
	pts    plotter.XYs
	dashed bool
}

// latencySeries are the plotted lines: p50 and p99 of each wait mode, and
// the bare cache-line ping as a floor.
func latencySeries(rep *Report) []series {
	var ss []series
	cols := map[string]color.RGBA{WaitPoll: {0x1f, 0x77, 0xb4, 255}, WaitFutex: {0xff, 0x7f, 0x0e, 255}, WaitLatency: {0x2c, 0xa0, 0x2c, 255}, WaitEarly: {0x94, 0x67, 0xbd, 255}}
	for _, wait := range []string{WaitPoll, WaitFutex, WaitLatency, WaitEarly} {
		for _, q := range []string{"p50", "p99"} {
			s := series{name: wait + " " + q, col: cols[wait], dashed: q == "p99"}
			for _, r := range rep.Latency {
				if r.Wait != wait || r.Latency.Count == 0 {
					continue
				}
				v := r.Latency.P50
				if q == "p99" {
					v = r.Latency.P99
				}
				s.pts = append(s.pts, plotter.XY{X: float64(r.Payload), Y: micros(v)})
			}
			if len(s.pts) > 0 {
				ss = append(ss, s)
			}
		}
	}
	if len(ss) > 0 && rep.Ping != nil && rep.Ping.OneWay.P50 > 0 {
		var xs []float64
		for _, s := range ss {
			for _, p := range s.pts {
				xs = append(xs, p.X)
			}
		}
		f := micros(rep.Ping.OneWay.P50)
		ss = append(ss, series{name: "cache-line ping p50 (floor)", col: color.RGBA{0x7f, 0x7f, 0x7f, 255}, dashed: true,
			pts: plotter.XYs{{X: slices.Min(xs), Y: f}, {X: slices.Max(xs), Y: f}}})
	}
	return ss
}

// micros is a latency in µs; a log axis needs it positive.
func micros(ns int64) float64 { return math.Max(float64(ns), 1) / 1e3 }

func writePlot(rep *Report, path string) error {
	ss := latencySeries(rep)
	if len(ss) == 0 {
		return fmt.Errorf("plot latency: no data")
	}
	p := plot.New()
	when := rep.Started
	if when.IsZero() {
		when = rep.Machine.Date
	}
	title := "framering handoff latency vs payload"
	if m := rep.Machine; m.CPUModel != "" {
		title += fmt.Sprintf("\n%s, %d cores, Linux %s", m.CPUModel, m.Cores, m.Kernel)
	}
	if !when.IsZero() {
		title += ", " + when.UTC().Format("2006-01-02 15:04 UTC")
	}
	p.Title.Text = title
	p.X.Label.Text = "payload (bytes)"
	p.Y.Label.Text = "one-way latency, publish to lease (µs)"
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	var sizes []float64
	for _, r := range rep.Latency {
		if r.Latency.Count > 0 {
			sizes = append(sizes, float64(r.Payload))
		}
	}
	slices.Sort(sizes)
	sizes = slices.Compact(sizes)
	p.X.Tick.Marker = sizeTicks(sizes)
	p.Y.Tick.Marker = decadeTicks{}
	// Whole decades on the latency axis;
	// some room either side of the first and last payload for their labels.
	lo, hi := math.Inf(1), 0.0
	for _, s := range ss {
		for _, pt := range s.pts {
			lo, hi = math.Min(lo, pt.Y), math.Max(hi, pt.Y)
		}
	}
	p.Y.Min, p.Y.Max = math.Pow(10, math.Floor(math.Log10(lo))), math.Pow(10, math.Ceil(math.Log10(hi)))
	p.X.Min, p.X.Max = sizes[0]/1.6, sizes[len(sizes)-1]*1.6
	p.Add(plotter.NewGrid())
	for _, s := range ss {
		l, pts, err := plotter.NewLinePoints(s.pts)
		if err != nil {
			return fmt.Errorf("plot latency: %w", err)
		}
		l.Color, l.Width = s.col, vg.Points(1.5)
		if s.dashed {
			l.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
		}
		pts.Color, pts.Shape, pts.Radius = s.col, draw.CircleGlyph{}, vg.Points(2.5)
		p.Add(l, pts)
		p.Legend.Add(s.name, l, pts)
	}
	p.Legend.Top, p.Legend.Left = true, true
	if err := p.Save(9*vg.Inch, 5.6*vg.Inch, path); err != nil {
		return fmt.Errorf("plot latency: %w", err)
	}
	return nil
}

// sizeTicks labels every measured payload size (4KiB, 64KiB, ... 32MiB).
type sizeTicks []float64

func (t sizeTicks) Ticks(float64, float64) []plot.Tick {
	ticks := make([]plot.Tick, len(t))
	for i, v := range t {
		ticks[i] = plot.Tick{Value: v, Label: sizeName(int(v))}
	}
	return ticks
}

// decadeTicks labels every power of ten in range, in µs, as plain numbers
// (0.1, 1, 10, 100, 1000), with unlabelled minor ticks between.
type decadeTicks struct{}

func (decadeTicks) Ticks(lo, hi float64) []plot.Tick {
	var ticks []plot.Tick
	for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
		d := math.Pow(10, e)
		if d >= lo && d <= hi {
			ticks = append(ticks, plot.Tick{Value: d, Label: strconv.FormatFloat(d, 'f', -1, 64)})
		}
		for m := 2.0; m < 10; m++ {
			if v := m * d; v >= lo && v <= hi {
				ticks = append(ticks, plot.Tick{Value: v})
			}
		}
	}
	return ticks
}
