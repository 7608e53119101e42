package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// compareOutputs checks that the CSV file at path holds the same table as
// want: the same columns in any order and the same rows, in the same
// order when the task is ordered. Numbers compare to 9 significant
// digits, since tools sum floating-point values in different orders.
func compareOutputs(task blockTask, want *table, path string) error {
	got, err := readCSV(path)
	if err != nil {
		return err
	}
	if len(got.rows) != len(want.rows) {
		return fmt.Errorf("%d rows, want %d", len(got.rows), len(want.rows))
	}
	gotRows, err := projectRows(got, want.header)
	if err != nil {
		return err
	}
	wantRows, _ := projectRows(want, want.header)
	if task.ordered {
		return firstDifference(gotRows, wantRows)
	}
	if len(task.orderedBy) > 0 {
		gotKeys, err := projectRows(got, task.orderedBy)
		if err != nil {
			return err
		}
		wantKeys, _ := projectRows(want, task.orderedBy)
		if err := firstDifference(gotKeys, wantKeys); err != nil {
			return fmt.Errorf("order of %s: %w", strings.Join(task.orderedBy, ", "), err)
		}
	}
	slices.Sort(gotRows)
	slices.Sort(wantRows)
	return firstDifference(gotRows, wantRows)
}

// projectRows returns each row's cells in the order of columns, each
// normalised and joined by a unit separator.
func projectRows(t *table, columns []string) ([]string, error) {
	index := make([]int, len(columns))
	for i, name := range columns {
		index[i] = slices.Index(t.header, name)
		if index[i] < 0 {
			return nil, fmt.Errorf("no column %q in %v", name, t.header)
		}
	}
	rows := make([]string, len(t.rows))
	cells := make([]string, len(columns))
	for r, record := range t.rows {
		for i, c := range index {
			cells[i] = normalizeCell(record[c])
		}
		rows[r] = strings.Join(cells, "\x1f")
	}
	return rows, nil
}

func normalizeCell(cell string) string {
	if f, err := strconv.ParseFloat(cell, 64); err == nil {
		return strconv.FormatFloat(f, 'g', 9, 64)
	}
	return cell
}

func firstDifference(got, want []string) error {
	for i := range want {
		if got[i] != want[i] {
			return fmt.Errorf("row %d is %q, want %q", i+1, strings.ReplaceAll(got[i], "\x1f", ","), strings.ReplaceAll(want[i], "\x1f", ","))
		}
	}
	return nil
}
