package bench

// latency.png: handoff latency against payload size, both axes log-scale,
// drawn with the standard library (image, image/png) and the basic
// bitmap font of golang.org/x/image.

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"os"
	"slices"
	"strings"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

type series struct {
	name string
	col  color.RGBA
	xs   []float64
	ys   []float64
	dash bool
}

func writePlot(rep *Report, path string) error {
	var ss []series
	cols := map[string]color.RGBA{WaitPoll: {0x1f, 0x77, 0xb4, 255}, WaitFutex: {0xff, 0x7f, 0x0e, 255}, WaitLatency: {0x2c, 0xa0, 0x2c, 255}}
	for _, wait := range []string{WaitPoll, WaitFutex, WaitLatency} {
		for _, q := range []string{"p50", "p99"} {
			s := series{name: wait + " " + q, col: cols[wait], dash: q == "p99"}
			for _, r := range rep.Latency {
				if r.Wait != wait || r.Latency.Count == 0 {
					continue
				}
				v := r.Latency.P50
				if q == "p99" {
					v = r.Latency.P99
				}
				s.xs, s.ys = append(s.xs, float64(r.Payload)), append(s.ys, float64(v))
			}
			if len(s.xs) > 0 {
				ss = append(ss, s)
			}
		}
	}
	if len(ss) == 0 {
		return fmt.Errorf("plot latency: no data")
	}
	var xs, ys []float64
	for _, s := range ss {
		xs, ys = append(xs, s.xs...), append(ys, s.ys...)
	}
	if rep.Ping != nil && rep.Ping.OneWay.P50 > 0 {
		f := float64(rep.Ping.OneWay.P50)
		ss = append(ss, series{name: "cache-line ping p50", col: color.RGBA{0x7f, 0x7f, 0x7f, 255},
			xs: []float64{slices.Min(xs), slices.Max(xs)}, ys: []float64{f, f}, dash: true})
		ys = append(ys, f)
	}
	const W, H, left, right, top, bottom = 900, 560, 80, 30, 40, 60
	img := image.NewRGBA(image.Rect(0, 0, W, H))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	x0, x1 := math.Floor(math.Log2(slices.Min(xs))), math.Ceil(math.Log2(slices.Max(xs)))
	if x1 <= x0 {
		x1 = x0 + 1
	}
	y0, y1 := math.Floor(math.Log10(max(slices.Min(ys), 1))), math.Ceil(math.Log10(max(slices.Max(ys), 10)))
	if y1 <= y0 {
		y1 = y0 + 1
	}
	px := func(x float64) int { return left + int((math.Log2(x)-x0)/(x1-x0)*float64(W-left-right)) }
	py := func(y float64) int {
		return H - bottom - int((math.Log10(max(y, 1))-y0)/(y1-y0)*float64(H-top-bottom))
	}
	grid := color.RGBA{0xdd, 0xdd, 0xdd, 255}
	black := color.RGBA{0, 0, 0, 255}
	for e := y0; e <= y1; e++ {
		y := py(math.Pow(10, e))
		line(img, left, y, W-right, y, grid, false)
		label(img, 5, y+4, asciiNs(int64(math.Pow(10, e))), black)
	}
	for e := x0; e <= x1; e++ {
		x := px(math.Pow(2, e))
		line(img, x, top, x, H-bottom, grid, false)
		if int(e)%2 == 0 || x1-x0 <= 8 {
			label(img, x-14, H-bottom+18, sizeName(1<<int(e)), black)
		}
	}
	line(img, left, H-bottom, W-right, H-bottom, black, false)
	line(img, left, top, left, H-bottom, black, false)
	label(img, left, 20, "framering handoff latency vs payload (log-log), "+rep.Machine.CPUModel, black)
	label(img, W/2-40, H-15, "payload size", black)
	for i, s := range ss {
		for j := 1; j < len(s.xs); j++ {
			line(img, px(s.xs[j-1]), py(s.ys[j-1]), px(s.xs[j]), py(s.ys[j]), s.col, s.dash)
		}
		for j := range s.xs {
			dot(img, px(s.xs[j]), py(s.ys[j]), s.col)
		}
		ly := top + 10 + 16*i
		line(img, W-right-200, ly, W-right-170, ly, s.col, s.dash)
		label(img, W-right-165, ly+4, s.name, black)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("plot latency: %w", err)
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return fmt.Errorf("plot latency: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("plot latency: %w", err)
	}
	return nil
}

// line draws a 2-pixel-wide line (Bresenham), optionally dashed.
func line(img *image.RGBA, x0, y0, x1, y1 int, c color.RGBA, dash bool) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := sign(x1-x0), sign(y1-y0)
	e := dx + dy
	for n := 0; ; n++ {
		if !dash || (n/6)%2 == 0 {
			img.SetRGBA(x0, y0, c)
			img.SetRGBA(x0+1, y0, c)
			img.SetRGBA(x0, y0+1, c)
		}
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * e
		if e2 >= dy {
			e += dy
			x0 += sx
		}
		if e2 <= dx {
			e += dx
			y0 += sy
		}
	}
}

func dot(img *image.RGBA, x, y int, c color.RGBA) {
	for i := -3; i <= 3; i++ {
		for j := -3; j <= 3; j++ {
			if i*i+j*j <= 9 {
				img.SetRGBA(x+i, y+j, c)
			}
		}
	}
}

func label(img *image.RGBA, x, y int, s string, c color.RGBA) {
	d := font.Drawer{Dst: img, Src: image.NewUniform(c), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

// asciiNs is ns for the bitmap font, which has no µ.
func asciiNs(v int64) string { return strings.ReplaceAll(ns(v), "µ", "u") }

func abs(v int) int { return max(v, -v) }

func sign(v int) int {
	switch {
	case v > 0:
		return 1
	case v < 0:
		return -1
	}
	return 0
}
