package blocks

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// joinKind joins two inputs, left then right, on equal key fields with a
// hash table built over the right input. Options: type, "inner" (the
// default) or "left", and on (required), an object from left field to
// right field. A null key never matches, as in SQL. Keys are equal as in
// aggregate's grouping, so int64 1 matches float64 1.0. A left join keeps
// unmatched left rows with null right fields. Output rows follow the left
// input, and each left row's matches follow the right input.
//
// The output has the left columns, then the right columns whose names the
// left does not have. A right column with the name of a left column is
// dropped and the left value wins, including a right key field named like
// its left key field.
var joinKind = Kind{Type: "join", MinInputs: 2, MaxInputs: 2, Compile: compileJoin}

type joinBlock struct {
	keepUnmatched bool
	// leftKeys[i] is matched against rightKeys[i]. They are ordered by
	// left field name.
	leftKeys, rightKeys []string
}

func compileJoin(options map[string]any, cc CompileContext) (Block, []OptionError) {
	r := newOptionReader(options, cc)
	block := &joinBlock{}
	switch joinType := r.text("type", false); joinType {
	case "", "inner":
	case "left":
		block.keepUnmatched = true
	default:
		if !r.isDeferred(joinType) {
			r.addProblem("type", "must be \"inner\" or \"left\", got %q", joinType)
		}
	}
	on := r.textMap("on", true)
	if on != nil && len(on) == 0 {
		r.addProblem("on", "must name at least one pair of fields")
	}
	for _, left := range sortedKeys(on) {
		if on[left] == "" {
			r.addProblem("on."+left, "must not be empty")
			continue
		}
		block.leftKeys = append(block.leftKeys, left)
		block.rightKeys = append(block.rightKeys, on[left])
	}
	if problems := r.finish(); len(problems) > 0 {
		return nil, problems
	}
	return block, nil
}

// Run joins inputs[0] (left) with inputs[1] (right).
func (b *joinBlock) Run(ctx context.Context, _ *Env, inputs []*Table) (*Table, error) {
	if len(inputs) != 2 || inputs[0] == nil || inputs[1] == nil {
		return nil, fmt.Errorf("expected 2 inputs, got %d", len(inputs))
	}
	left, right := inputs[0], inputs[1]
	if err := checkJoinFields("left", b.leftKeys, left.Columns); err != nil {
		return nil, err
	}
	if err := checkJoinFields("right", b.rightKeys, right.Columns); err != nil {
		return nil, err
	}

	index, err := b.indexRight(ctx, right.Rows)
	if err != nil {
		return nil, err
	}
	added := addedColumns(left.Columns, right.Columns)
	columns := append(slices.Clone(left.Columns), added...)

	rows := make([]Row, 0, len(left.Rows))
	var key []byte
	for i, row := range left.Rows {
		if err := checkContext(ctx, i); err != nil {
			return nil, err
		}
		key = appendJoinKey(key[:0], row, b.leftKeys)
		var matches []int
		if key != nil {
			matches = index[string(key)]
		}
		for _, match := range matches {
			rows = append(rows, joinRow(row, right.Rows[match], added))
		}
		if len(matches) == 0 && b.keepUnmatched {
			rows = append(rows, joinRow(row, nil, added))
		}
	}
	return &Table{Columns: columns, Rows: rows}, nil
}

// addedColumns returns the right columns whose names the left lacks.
func addedColumns(left, right []string) []string {
	var added []string
	for _, name := range right {
		if !slices.Contains(left, name) {
			added = append(added, name)
		}
	}
	return added
}

func checkJoinFields(side string, keys, columns []string) error {
	for _, key := range keys {
		if !slices.Contains(columns, key) {
			return fmt.Errorf("on: unknown field %q in the %s input; it has the columns %s",
				key, side, strings.Join(columns, ", "))
		}
	}
	return nil
}

// indexRight maps each right row's key to the positions of the rows with
// that key, skipping rows with a null key.
func (b *joinBlock) indexRight(ctx context.Context, rows []Row) (map[string][]int, error) {
	index := make(map[string][]int, len(rows))
	var key []byte
	for i, row := range rows {
		if err := checkContext(ctx, i); err != nil {
			return nil, err
		}
		if key = appendJoinKey(key[:0], row, b.rightKeys); key != nil {
			index[string(key)] = append(index[string(key)], i)
		}
	}
	return index, nil
}

// appendJoinKey appends the encoded key fields of row to buf, or returns
// nil when a key field is null.
func appendJoinKey(buf []byte, row Row, fields []string) []byte {
	for _, field := range fields {
		value := row[field]
		if value == nil {
			return nil
		}
		buf = appendKey(buf, value)
	}
	return buf
}

// joinRow returns a new row with the fields of left and the added fields
// of right, which are null when right is nil.
func joinRow(left, right Row, added []string) Row {
	row := make(Row, len(left)+len(added))
	for k, v := range left {
		row[k] = v
	}
	for _, name := range added {
		row[name] = right[name]
	}
	return row
}
