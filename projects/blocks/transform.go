package blocks

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// filterKind keeps the rows for which an expression is true. Option: where
// (required), an expr-lang expression over the row's fields and params.
// A field whose name is not an identifier is written $env["Cost Total $"].
// A null result drops the row, as in SQL. Any result other than a boolean
// or null fails the block with the row number, and so does referring to a
// field the input does not have.
var filterKind = Kind{Type: "filter", MinInputs: 1, MaxInputs: 1, Compile: compileFilter}

// computeKind adds or replaces fields. Option: fields (required), an
// object from field name to expr-lang expression, written as in filter.
// Every expression reads the input row, never another computed field, so
// the order of the object does not matter. Replaced fields keep their
// position and new fields are appended in sorted name order.
var computeKind = Kind{Type: "compute", MinInputs: 1, MaxInputs: 1, Compile: compileCompute}

// selectKind keeps and renames fields. Options: fields, an array of the
// fields to keep in that order, and rename, an object from old to new
// name. At least one of the two is required. A field that the input does
// not have fails the block.
var selectKind = Kind{Type: "select", MinInputs: 1, MaxInputs: 1, Compile: compileSelect}

// limitKind keeps the first rows. Option: rows (required), an integer of 0
// or more.
var limitKind = Kind{Type: "limit", MinInputs: 1, MaxInputs: 1, Compile: compileLimit}

// expression reads the required option name as an expression and
// compiles it.
func (r *optionReader) expression(name string) *expression {
	source := r.text(name, true)
	if source == "" {
		return nil
	}
	return r.compileAt(name, source)
}

// compileAt compiles source, found at the option path, and records its
// problems.
func (r *optionReader) compileAt(path, source string) *expression {
	compiled, problems := compileExpression(path, source, r.cc)
	r.problems = append(r.problems, problems...)
	return compiled
}

// singleInput returns the only input, or an error when the caller passed
// a different number.
func singleInput(inputs []*Table) (*Table, error) {
	if len(inputs) != 1 || inputs[0] == nil {
		return nil, fmt.Errorf("expected 1 input, got %d", len(inputs))
	}
	return inputs[0], nil
}

// checkContext returns ctx's error on every checkInterval-th row.
func checkContext(ctx context.Context, row int) error {
	if row%checkInterval == 0 {
		return ctx.Err()
	}
	return nil
}

// paramsOf returns the job's parameters, or nil when env is nil.
func paramsOf(env *Env) map[string]any {
	if env == nil {
		return nil
	}
	return env.Params
}

// missingField returns an error naming the first of names that columns
// lacks, or nil.
func missingField(option string, names, columns []string) error {
	for _, name := range names {
		if !slices.Contains(columns, name) {
			return fmt.Errorf("%s: unknown field %q; the input has the columns %s",
				option, name, strings.Join(columns, ", "))
		}
	}
	return nil
}

type filterBlock struct {
	where *expression
}

func compileFilter(options map[string]any, cc CompileContext) (Block, []OptionError) {
	r := newOptionReader(options, cc)
	block := &filterBlock{where: r.expression("where")}
	if problems := r.finish(); len(problems) > 0 {
		return nil, problems
	}
	return block, nil
}

// Run keeps the rows for which where is true.
func (b *filterBlock) Run(ctx context.Context, env *Env, inputs []*Table) (*Table, error) {
	input, err := singleInput(inputs)
	if err != nil {
		return nil, err
	}
	if err := b.where.checkFields(input.Columns); err != nil {
		return nil, err
	}

	// A large input is filtered in chunks on every core, each with a
	// scope of its own, and the kept rows are joined in order.
	chunks := chunkCount(len(input.Rows))
	kept := make([][]Row, chunks)
	err = forChunks(len(input.Rows), chunks, func(chunk, low, high int) error {
		s := newScope(paramsOf(env), []*expression{b.where})
		var err error
		kept[chunk], err = b.filterRows(ctx, s, input.Rows[low:high], low)
		return err
	})
	if err != nil {
		return nil, err
	}
	rows := make([]Row, 0)
	for _, part := range kept {
		rows = append(rows, part...)
	}
	return &Table{Columns: input.Columns, Rows: rows}, nil
}

// filterRows returns the rows for which where is true. offset is the
// index of rows[0] in the input, for messages.
func (b *filterBlock) filterRows(ctx context.Context, s *scope, rows []Row, offset int) ([]Row, error) {
	var kept []Row
	// One evaluation may take milliseconds, so a stop is checked on
	// every row; ctx.Err is an atomic load.
	for i, row := range rows {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		number := offset + i + 1
		s.load(row)
		keep, err := s.evaluate(b.where)
		if err != nil {
			return nil, b.where.rowError(number, err)
		}
		switch k := keep.(type) {
		case bool:
			if k {
				kept = append(kept, row)
			}
		case nil:
		default:
			return nil, fmt.Errorf("row %d: where returned %s; expected true, false or null", number, describeResult(keep))
		}
	}
	return kept, nil
}

// describeResult renders an expression's result for a message.
func describeResult(v any) string {
	if normalized, err := normalizeValue(v); err == nil {
		return describeValue(normalized)
	}
	return fmt.Sprintf("a value of type %T", v)
}

type computeBlock struct {
	// names is sorted, and expressions[i] computes names[i].
	names       []string
	expressions []*expression
}

func compileCompute(options map[string]any, cc CompileContext) (Block, []OptionError) {
	r := newOptionReader(options, cc)
	fields := r.textMap("fields", true)
	if fields != nil && len(fields) == 0 {
		r.addProblem("fields", "must name at least one field")
	}
	block := &computeBlock{}
	for _, name := range sortedKeys(fields) {
		if compiled := r.compileAt("fields."+name, fields[name]); compiled != nil {
			block.names = append(block.names, name)
			block.expressions = append(block.expressions, compiled)
		}
	}
	if problems := r.finish(); len(problems) > 0 {
		return nil, problems
	}
	return block, nil
}

// Run computes the fields of every row.
func (b *computeBlock) Run(ctx context.Context, env *Env, inputs []*Table) (*Table, error) {
	input, err := singleInput(inputs)
	if err != nil {
		return nil, err
	}
	for _, e := range b.expressions {
		if err := e.checkFields(input.Columns); err != nil {
			return nil, err
		}
	}

	columns := slices.Clone(input.Columns)
	for _, name := range b.names {
		if !slices.Contains(columns, name) {
			columns = append(columns, name)
		}
	}
	rows := make([]Row, len(input.Rows))
	// A large input is computed in chunks on every core, each with a
	// scope of its own, into its own range of rows.
	err = forChunks(len(rows), chunkCount(len(rows)), func(_, low, high int) error {
		s := newScope(paramsOf(env), b.expressions)
		// One evaluation may take milliseconds, so a stop is checked on
		// every row; ctx.Err is an atomic load.
		for i := low; i < high; i++ {
			if err := ctx.Err(); err != nil {
				return err
			}
			var err error
			if rows[i], err = b.computeRow(s, input.Rows[i], i+1); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &Table{Columns: columns, Rows: rows}, nil
}

// computeRow returns a copy of row with the computed fields set.
func (b *computeBlock) computeRow(s *scope, row Row, number int) (Row, error) {
	s.load(row)
	result := make(Row, len(row)+len(b.names))
	for k, v := range row {
		result[k] = v
	}
	for i, e := range b.expressions {
		v, err := s.evaluate(e)
		if err == nil {
			v, err = normalizeValue(v)
		}
		if err != nil {
			return nil, e.rowError(number, err)
		}
		result[b.names[i]] = v
	}
	return result, nil
}

type selectBlock struct {
	// fields is nil when every field is kept.
	fields []string
	rename map[string]string
}

func compileSelect(options map[string]any, cc CompileContext) (Block, []OptionError) {
	r := newOptionReader(options, cc)
	block := &selectBlock{fields: r.names("fields", false, false), rename: r.textMap("rename", false)}
	hasFields, hasRename := options["fields"] != nil, options["rename"] != nil
	if !hasFields && !hasRename {
		r.addProblem("fields", "missing; give fields, rename or both")
	}
	if block.fields != nil && len(block.fields) == 0 {
		r.addProblem("fields", "must name at least one field")
	}
	checkRenames(r, block.fields, hasFields, block.rename)
	if problems := r.finish(); len(problems) > 0 {
		return nil, problems
	}
	return block, nil
}

// checkRenames records renames to an empty name, renames of fields that
// the fields option drops and renames that give two fields one name.
func checkRenames(r *optionReader, fields []string, hasFields bool, rename map[string]string) {
	targets := make(map[string]string, len(rename))
	for _, old := range sortedKeys(rename) {
		name := rename[old]
		if name == "" {
			r.addProblem("rename."+old, "must not be empty")
			continue
		}
		if hasFields && !slices.Contains(fields, old) {
			r.addProblem("rename."+old, "renames %q, which fields does not keep", old)
		}
		if other, ok := targets[name]; ok {
			r.addProblem("rename."+old, "renames to %q, as rename.%s does", name, other)
		}
		targets[name] = old
	}
	if !hasFields {
		return
	}
	for _, field := range fields {
		if _, renamed := rename[field]; !renamed {
			if old, ok := targets[field]; ok {
				r.addProblem("rename."+old, "renames to %q, which fields also keeps", field)
			}
		}
	}
}

// Run keeps and renames the fields of every row.
func (b *selectBlock) Run(ctx context.Context, _ *Env, inputs []*Table) (*Table, error) {
	input, err := singleInput(inputs)
	if err != nil {
		return nil, err
	}
	kept := b.fields
	if kept == nil {
		kept = input.Columns
	}
	if err := missingField("fields", kept, input.Columns); err != nil {
		return nil, err
	}
	if err := missingField("rename", sortedKeys(b.rename), input.Columns); err != nil {
		return nil, err
	}
	columns, err := b.outputColumns(kept)
	if err != nil {
		return nil, err
	}

	rows := make([]Row, len(input.Rows))
	for i, row := range input.Rows {
		if err := checkContext(ctx, i); err != nil {
			return nil, err
		}
		selected := make(Row, len(kept))
		for j, field := range kept {
			selected[columns[j]] = row[field]
		}
		rows[i] = selected
	}
	return &Table{Columns: columns, Rows: rows}, nil
}

// outputColumns renames kept, rejecting a rename that collides with a
// field kept under its own name.
func (b *selectBlock) outputColumns(kept []string) ([]string, error) {
	columns := make([]string, len(kept))
	seen := make(map[string]string, len(kept))
	for i, field := range kept {
		name := field
		if renamed, ok := b.rename[field]; ok {
			name = renamed
		}
		if other, ok := seen[name]; ok {
			return nil, fmt.Errorf("rename: fields %q and %q would both be named %q", other, field, name)
		}
		seen[name] = field
		columns[i] = name
	}
	return columns, nil
}

type limitBlock struct {
	rows int64
}

func compileLimit(options map[string]any, cc CompileContext) (Block, []OptionError) {
	r := newOptionReader(options, cc)
	block := &limitBlock{rows: r.nonNegativeInteger("rows", true)}
	if problems := r.finish(); len(problems) > 0 {
		return nil, problems
	}
	return block, nil
}

// Run keeps the first rows of the input.
func (b *limitBlock) Run(ctx context.Context, _ *Env, inputs []*Table) (*Table, error) {
	input, err := singleInput(inputs)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	n := len(input.Rows)
	if b.rows < int64(n) {
		n = int(b.rows)
	}
	return &Table{Columns: input.Columns, Rows: slices.Clip(input.Rows[:n])}, nil
}
