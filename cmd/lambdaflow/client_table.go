package main

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lambdaflow/lambdaflow/openapi/client"
)

// table writes aligned columns separated by two spaces.
type table struct {
	w *tabwriter.Writer
}

func newTable(w io.Writer, header ...string) *table {
	t := &table{w: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	t.row(header...)
	return t
}

func (t *table) row(cells ...string) {
	fmt.Fprintln(t.w, strings.Join(cells, "\t"))
}

func (t *table) flush() error {
	return t.w.Flush()
}

// printRows writes result rows as a table whose columns are the fields
// of all rows in alphabetical order, the order the server sends them in.
func printRows(w io.Writer, rows []map[string]*client.AnyValue) error {
	seen := map[string]bool{}
	var columns []string
	for _, row := range rows {
		for name := range row {
			if !seen[name] {
				seen[name] = true
				columns = append(columns, name)
			}
		}
	}
	sort.Strings(columns)
	t := newTable(w, columns...)
	for _, row := range rows {
		cells := make([]string, len(columns))
		for i, name := range columns {
			cells[i] = formatValue(row[name])
		}
		t.row(cells...)
	}
	return t.flush()
}

// formatValue writes a JSON value for a table cell: null as an empty
// cell and numbers in their shortest exact form.
func formatValue(v *client.AnyValue) string {
	if v == nil || *v == nil {
		return ""
	}
	switch x := (*v).(type) {
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case string:
		return x
	default:
		return fmt.Sprint(x)
	}
}

// printJob writes a job's summary, its blocks and its result rows.
func printJob(w io.Writer, job *client.Job) error {
	t := newTable(w, "FIELD", "VALUE")
	t.row("id", job.Id.String())
	t.row("project", job.Project)
	t.row("kind", string(job.Kind))
	t.row("state", string(job.State))
	t.row("submitted", job.SubmittedAt.Format(time.RFC3339))
	if d, ok := jobDuration(job); ok {
		t.row("duration", d.String())
	}
	if job.WaitingFor != nil {
		t.row("waiting for", string(job.WaitingFor.Reason))
	}
	if job.Error != nil {
		t.row("error", fmt.Sprintf("%s: %s", job.Error.Type, job.Error.Message))
	}
	for _, out := range job.Outputs {
		t.row("output", fmt.Sprintf("%s (%d bytes)", out.Name, out.Bytes))
	}
	if err := t.flush(); err != nil {
		return err
	}

	fmt.Fprintln(w)
	blocks := newTable(w, "BLOCK", "TYPE", "STATE", "DURATION", "ROWS")
	for _, b := range job.Blocks {
		blocks.row(b.Name, b.Type, string(b.State), formatMs(b.DurationMs), formatCount(b.RowsOut))
	}
	if err := blocks.flush(); err != nil {
		return err
	}
	if job.Result != nil && len(job.Result.Rows) > 0 {
		fmt.Fprintln(w)
		return printRows(w, job.Result.Rows)
	}
	return nil
}

// jobDuration returns how long a started job ran, or has run so far.
func jobDuration(job *client.Job) (time.Duration, bool) {
	if job.StartedAt == nil {
		return 0, false
	}
	end := time.Now()
	if job.FinishedAt != nil {
		end = *job.FinishedAt
	}
	return end.Sub(*job.StartedAt).Round(time.Millisecond), true
}

func formatMs(ms *int) string {
	if ms == nil {
		return ""
	}
	return (time.Duration(*ms) * time.Millisecond).String()
}

func formatCount(n *int) string {
	if n == nil {
		return ""
	}
	return fmt.Sprint(*n)
}
