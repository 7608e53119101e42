package blocks

import (
	"cmp"
	"context"
	"slices"
)

// sortKind orders rows by one or more fields. Options: by (required), a
// field name or an array of them, and desc (default false), which reverses
// the order of every field. The sort is stable. Nulls sort last in both
// directions. Numbers compare by value across int64 and float64, dates
// chronologically and text by bytes. Values of different types order as
// boolean < number < date < text.
var sortKind = Kind{Type: "sort", MinInputs: 1, MaxInputs: 1, Compile: compileSort}

type sortBlock struct {
	by         []string
	descending bool
}

func compileSort(options map[string]any, cc CompileContext) (Block, []OptionError) {
	r := newOptionReader(options, cc)
	block := &sortBlock{by: r.names("by", true, true), descending: r.boolean("desc", false)}
	if block.by != nil && len(block.by) == 0 {
		r.addProblem("by", "must name at least one field")
	}
	if problems := r.finish(); len(problems) > 0 {
		return nil, problems
	}
	return block, nil
}

// Run sorts a copy of the input's rows.
func (b *sortBlock) Run(ctx context.Context, _ *Env, inputs []*Table) (*Table, error) {
	input, err := singleInput(inputs)
	if err != nil {
		return nil, err
	}
	if err := missingField("by", b.by, input.Columns); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	keys, order := b.extractKeys(input.Rows)
	// A large input is sorted in chunks on every core, and the sorted
	// chunks are merged. Rows compare by key and then by index, a total
	// order, so the result is the same as one sort of all rows.
	chunks := chunkCount(len(order))
	err = forChunks(len(order), chunks, func(_, low, high int) error {
		return b.sortIndexes(ctx, keys, order[low:high])
	})
	if err != nil {
		return nil, err
	}
	order = b.mergeChunks(keys, order, chunks)

	rows := make([]Row, len(order))
	for i, index := range order {
		rows[i] = input.Rows[index]
	}
	return &Table{Columns: input.Columns, Rows: rows}, nil
}

// compareRows compares rows x and y by their keys and then by index, which
// makes the order stable, so the faster unstable sort serves.
func (b *sortBlock) compareRows(keys []any, x, y int) int {
	width := len(b.by)
	if c := b.compareKeys(keys[x*width:(x+1)*width], keys[y*width:(y+1)*width]); c != 0 {
		return c
	}
	return cmp.Compare(x, y)
}

// sortIndexes sorts order, a list of row indexes, by compareRows. It
// returns ctx's error when ctx ended during the sort.
func (b *sortBlock) sortIndexes(ctx context.Context, keys []any, order []int) error {
	comparisons := 0
	cancelled := false
	slices.SortFunc(order, func(x, y int) int {
		comparisons++
		if comparisons%(16*checkInterval) == 0 && ctx.Err() != nil {
			cancelled = true
		}
		if cancelled {
			return 0
		}
		return b.compareRows(keys, x, y)
	})
	if cancelled {
		return ctx.Err()
	}
	return nil
}

// mergeChunks merges order, which holds chunks sorted runs of the sizes
// that forChunks gives them, into one sorted list.
func (b *sortBlock) mergeChunks(keys []any, order []int, chunks int) []int {
	size := (len(order) + chunks - 1) / chunks
	buffer := make([]int, len(order))
	for ; size < len(order); size *= 2 {
		for low := 0; low < len(order); low += 2 * size {
			middle, high := min(low+size, len(order)), min(low+2*size, len(order))
			b.mergeRuns(keys, order[low:middle], order[middle:high], buffer[low:high])
		}
		order, buffer = buffer, order
	}
	return order
}

// mergeRuns merges the sorted runs left and right into out.
func (b *sortBlock) mergeRuns(keys []any, left, right, out []int) {
	i, j := 0, 0
	for k := range out {
		if j >= len(right) || (i < len(left) && b.compareRows(keys, left[i], right[j]) <= 0) {
			out[k] = left[i]
			i++
		} else {
			out[k] = right[j]
			j++
		}
	}
}

// extractKeys copies the sort fields of every row into one slice, with
// row i's keys at [i*len(b.by), (i+1)*len(b.by)), so the comparison, which
// runs O(n log n) times, does no map lookups. It also returns the
// identity order of the rows.
func (b *sortBlock) extractKeys(rows []Row) ([]any, []int) {
	width := len(b.by)
	keys := make([]any, len(rows)*width)
	order := make([]int, len(rows))
	for i, row := range rows {
		order[i] = i
		for j, field := range b.by {
			keys[i*width+j] = row[field]
		}
	}
	return keys, order
}

// compareKeys compares two rows' sort keys field by field.
func (b *sortBlock) compareKeys(x, y []any) int {
	for i := range x {
		a, c := x[i], y[i]
		switch {
		case a == nil && c == nil:
			continue
		case a == nil:
			return 1
		case c == nil:
			return -1
		}
		result := compareValues(a, c)
		if b.descending {
			result = -result
		}
		if result != 0 {
			return result
		}
	}
	return 0
}
