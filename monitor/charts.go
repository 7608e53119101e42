package monitor

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/lambdaflow/lambdaflow/internal/httpapi"
)

// maxChartPoints caps the points of one chart line; longer ranges are
// averaged into buckets first.
const maxChartPoints = 600

// chart describes one chart: its title, its y axis and its lines.
type chart struct {
	title  string
	yLabel string
	// scale divides the stored values, such as bytes into GiB.
	scale float64
	// yMax fixes the top of the y axis when it is above zero.
	yMax  float64
	lines []chartLine
}

type chartLine struct {
	name   string
	metric metric
	color  color.RGBA
}

var (
	blue   = color.RGBA{R: 31, G: 119, B: 180, A: 255}
	orange = color.RGBA{R: 255, G: 127, B: 14, A: 255}
	green  = color.RGBA{R: 44, G: 160, B: 44, A: 255}
	red    = color.RGBA{R: 214, G: 39, B: 40, A: 255}
)

// charts are the charts GET /monitor/charts/{metric}.svg draws.
var charts = map[string]chart{
	"cpu": {title: "CPU", yLabel: "CPU (% of usable cores)", scale: 1, yMax: 100, lines: []chartLine{
		{"machine", metricCPUPercent, blue}, {"lambdaflow", metricProcessCPUPercent, orange}}},
	"memory": {title: "Memory", yLabel: "memory (GiB)", scale: 1 << 30, lines: []chartLine{
		{"used", metricMemoryUsed, blue}, {"total", metricMemoryTotal, green}, {"lambdaflow", metricProcessResident, orange}}},
	"disk": {title: "Disk I/O", yLabel: "disk I/O (MiB/s)", scale: 1 << 20, lines: []chartLine{
		{"read", metricDiskRead, blue}, {"write", metricDiskWrite, orange}}},
	"jobs": {title: "Jobs", yLabel: "jobs", scale: 1, lines: []chartLine{
		{"running", metricRunningJobs, blue}, {"queued", metricQueuedJobs, orange},
		{"blocked", metricBlockedJobs, red}, {"slot limit", metricConcurrentJobs, green}}},
}

// chartNames returns the chart names in alphabetical order.
func chartNames() []string {
	names := make([]string, 0, len(charts))
	for name := range charts {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// getChart draws a chart of the recent history.
//
//	@ID				getChart
//	@Summary		Draw a resource chart
//	@Description	Draws the history of one chart as an SVG line chart over time (UTC). The charts are cpu (machine and service CPU in % of the usable cores), memory (used, total and the service's resident memory in GiB), disk (read and write rates in MiB/s) and jobs (running, queued, blocked and the slot limit). Gaps where a value was not measured stay empty.
//	@Tags			monitor
//	@Produce		image/svg+xml
//	@Param			metric	path		string	true	"chart name followed by .svg"	Enums(cpu.svg,memory.svg,disk.svg,jobs.svg)
//	@Param			range	query		string	false	"time shown up to now, a Go duration up to the history length"	default(1h)
//	@Success		200		{string}	string	"the SVG document"
//	@Failure		400		{object}	httpapi.Problem	"An invalid range"
//	@Failure		404		{object}	httpapi.Problem	"An unknown chart"
//	@Security		BearerAuth
//	@Router			/api/v1/monitor/charts/{metric} [get]
func (m *Monitor) getChart(c *gin.Context) error {
	file := c.Param("metric")
	name, ok := strings.CutSuffix(file, ".svg")
	spec, known := charts[name]
	if !ok || !known {
		return httpapi.NotFound(httpapi.CodeNotFound, fmt.Sprintf("chart %q not found; the charts are %s, each followed by .svg",
			strings.TrimSuffix(file, ".svg"), strings.Join(chartNames(), ", ")))
	}
	span := time.Hour
	if value, ok := c.GetQuery("range"); ok {
		d, err := time.ParseDuration(value)
		if err != nil || d <= 0 || d > m.cfg.History {
			return httpapi.BadRequest("range", fmt.Sprintf("range must be a positive Go duration such as 1h, at most the history length %s, not %q",
				formatDuration(m.cfg.History), value))
		}
		span = d
	}

	to := time.Now().UTC()
	from := to.Add(-span)
	step := max(m.cfg.Interval, span/maxChartPoints)
	buckets := downsample(m.history.between(from, to), from, step)
	svg, err := drawChart(spec, buckets, from, to)
	if err != nil {
		return fmt.Errorf("drawing chart %s: %w", name, err)
	}
	c.Header("Cache-Control", "no-store")
	c.Data(http.StatusOK, "image/svg+xml", svg)
	return nil
}

// drawChart draws the means of buckets between from and to as SVG.
func drawChart(spec chart, buckets []ResourceBucket, from, to time.Time) ([]byte, error) {
	p := plot.New()
	p.Title.Text = spec.title
	p.X.Label.Text = "time (UTC)"
	p.Y.Label.Text = spec.yLabel
	p.X.Min, p.X.Max = unixSeconds(from), unixSeconds(to)
	p.X.Tick.Marker = plot.TimeTicks{Format: timeFormat(to.Sub(from))}
	p.Y.Min, p.Y.Max = 0, 1
	if spec.yMax > 0 {
		p.Y.Max = spec.yMax
	}
	p.Add(plotter.NewGrid())
	// The legend is drawn right of the plot area, where it hides no line.
	legend := plot.NewLegend()
	legend.Top = true

	for _, line := range spec.lines {
		segments := lineSegments(buckets, line.metric, spec.scale)
		for i, xys := range segments {
			l, err := plotter.NewLine(xys)
			if err != nil {
				return nil, err
			}
			l.Color = line.color
			l.Width = vg.Points(1.5)
			p.Add(l)
			if i == 0 {
				legend.Add(line.name, l)
			}
		}
	}
	if spec.yMax > 0 {
		// Lines past the fixed top, such as a clamped percentage, would
		// otherwise raise it.
		p.Y.Max = spec.yMax
	}
	if len(buckets) == 0 {
		p.Title.Text += " (no samples in this range)"
	}

	canvas := vgsvg.New(8*vg.Inch, 3*vg.Inch)
	dc := draw.New(canvas)
	legendBox := legend.Rectangle(dc)
	legend.Draw(dc)
	p.Draw(draw.Crop(dc, 0, -(legendBox.Max.X-legendBox.Min.X)-vg.Millimeter*2, 0, 0))
	var buf bytes.Buffer
	if _, err := canvas.WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// lineSegments returns the means of one metric as runs of points, split
// where a bucket did not measure it.
func lineSegments(buckets []ResourceBucket, m metric, scale float64) []plotter.XYs {
	var segments []plotter.XYs
	var current plotter.XYs
	for i := range buckets {
		stats := *buckets[i].fields()[m]
		if stats == nil || math.IsNaN(stats.Mean) {
			if len(current) > 0 {
				segments = append(segments, current)
				current = nil
			}
			continue
		}
		current = append(current, plotter.XY{X: unixSeconds(buckets[i].Time.Time), Y: stats.Mean / scale})
	}
	if len(current) > 0 {
		segments = append(segments, current)
	}
	return segments
}

func unixSeconds(t time.Time) float64 {
	return float64(t.UnixNano()) / 1e9
}

// timeFormat returns the tick label format for a time span.
func timeFormat(span time.Duration) string {
	switch {
	case span <= 10*time.Minute:
		return "15:04:05"
	case span <= 24*time.Hour:
		return "15:04"
	default:
		return "01-02 15:04"
	}
}
