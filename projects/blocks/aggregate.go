package blocks

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// aggregateKind groups rows and computes aggregates per group. Options:
// groupBy (default none), an array of fields, and aggregates, an object
// from output field to one of count(), count(f), countDistinct(f),
// sum(f), avg(f), min(f) or max(f). At least one of the two is required.
// A field name that contains parentheses, commas or quotes is written as
// a quoted string, as in sum("Cost (USD)").
//
// Nulls follow SQL: count() counts rows, count and countDistinct count
// non-null values, and sum, avg, min and max skip nulls and are null when
// every value is null. The sum of integers is int64 and fails on
// overflow. A sum with any float, and every avg, is float64. min and max
// order values as the sort block does. Without groupBy there is one group,
// even over no rows (count 0, sum null). Groups are output in order of
// first appearance, with the groupBy fields first and then the aggregates
// in sorted name order. Values group together when they are equal, so
// int64 1 and float64 1.0 share a group.
var aggregateKind = Kind{Type: "aggregate", MinInputs: 1, MaxInputs: 1, Compile: compileAggregate}

// aggregatePattern matches FUNCTION(ARGUMENT).
var aggregatePattern = regexp.MustCompile(`^\s*([A-Za-z]+)\s*\((.*)\)\s*$`)

var aggregateFunctions = []string{"count", "countDistinct", "sum", "avg", "min", "max"}

// aggregateSpec is one parsed entry of the aggregates option.
type aggregateSpec struct {
	name     string
	function string
	// field is empty for count().
	field string
}

type aggregateBlock struct {
	groupBy []string
	// specs is sorted by name.
	specs []aggregateSpec
}

func compileAggregate(options map[string]any, cc CompileContext) (Block, []OptionError) {
	r := newOptionReader(options, cc)
	block := &aggregateBlock{groupBy: r.names("groupBy", false, false)}
	aggregates := r.textMap("aggregates", false)
	if len(block.groupBy) == 0 && len(aggregates) == 0 && !r.hasProblemAt("aggregates") {
		r.addProblem("aggregates", "missing; give aggregates, groupBy or both")
	}
	for _, name := range sortedKeys(aggregates) {
		path := "aggregates." + name
		if slices.Contains(block.groupBy, name) {
			r.addProblem(path, "has the name of a groupBy field; choose another name")
			continue
		}
		spec, err := parseAggregate(name, aggregates[name])
		if err != nil {
			r.addProblem(path, "%v", err)
			continue
		}
		block.specs = append(block.specs, spec)
	}
	if problems := r.finish(); len(problems) > 0 {
		return nil, problems
	}
	return block, nil
}

// hasProblemAt reports whether a problem was recorded at option path.
func (r *optionReader) hasProblemAt(path string) bool {
	return slices.ContainsFunc(r.problems, func(p OptionError) bool { return p.Option == path })
}

// parseAggregate parses text such as "sum(precipitation)".
func parseAggregate(name, text string) (aggregateSpec, error) {
	match := aggregatePattern.FindStringSubmatch(text)
	if match == nil {
		return aggregateSpec{}, fmt.Errorf("invalid aggregate %q; expected FUNCTION(FIELD) with one of %s",
			text, strings.Join(aggregateFunctions, ", "))
	}
	function, argument := match[1], strings.TrimSpace(match[2])
	if !slices.Contains(aggregateFunctions, function) {
		return aggregateSpec{}, fmt.Errorf("unknown function %q; use one of %s",
			function, strings.Join(aggregateFunctions, ", "))
	}

	field := argument
	if strings.HasPrefix(argument, `"`) {
		unquoted, err := strconv.Unquote(argument)
		if err != nil {
			return aggregateSpec{}, fmt.Errorf("invalid quoted field name %s", argument)
		}
		field = unquoted
	} else if strings.ContainsAny(argument, `(),"`) {
		return aggregateSpec{}, fmt.Errorf("invalid field %q in %q; quote a field name that contains "+
			`parentheses, commas or quotes, as in sum("Cost (USD)")`, argument, text)
	}

	switch {
	case field == "" && function != "count":
		return aggregateSpec{}, fmt.Errorf("%s needs a field, as in %s(FIELD)", function, function)
	case field == "" && argument != "":
		return aggregateSpec{}, fmt.Errorf("count needs a non-empty field name or none, as in count()")
	}
	return aggregateSpec{name: name, function: function, field: field}, nil
}

// group is one group of rows and its accumulators, one per spec.
type group struct {
	values       []any
	accumulators []accumulator
}

// Run groups the input's rows and computes the aggregates.
func (b *aggregateBlock) Run(ctx context.Context, _ *Env, inputs []*Table) (*Table, error) {
	input, err := singleInput(inputs)
	if err != nil {
		return nil, err
	}
	if err := b.checkFields(input.Columns); err != nil {
		return nil, err
	}

	var groups []*group
	index := make(map[string]int)
	if len(b.groupBy) == 0 {
		groups = append(groups, b.newGroup(nil))
	}
	var key []byte
	for i, row := range input.Rows {
		if err := checkContext(ctx, i); err != nil {
			return nil, err
		}
		position := 0
		if len(b.groupBy) > 0 {
			key = key[:0]
			for _, field := range b.groupBy {
				key = appendKey(key, row[field])
			}
			var found bool
			if position, found = index[string(key)]; !found {
				position = len(groups)
				index[string(key)] = position
				groups = append(groups, b.newGroup(row))
			}
		}
		if err := b.accumulate(groups[position], row, i+1); err != nil {
			return nil, err
		}
	}
	return b.output(groups), nil
}

// checkFields returns an error when the input lacks a groupBy field or a
// field an aggregate reads.
func (b *aggregateBlock) checkFields(columns []string) error {
	if err := missingField("groupBy", b.groupBy, columns); err != nil {
		return err
	}
	for _, spec := range b.specs {
		if spec.field == "" {
			continue
		}
		if err := missingField("aggregates."+spec.name, []string{spec.field}, columns); err != nil {
			return err
		}
	}
	return nil
}

// newGroup starts a group whose groupBy values are those of row.
func (b *aggregateBlock) newGroup(row Row) *group {
	g := &group{values: make([]any, len(b.groupBy)), accumulators: make([]accumulator, len(b.specs))}
	for i, field := range b.groupBy {
		g.values[i] = row[field]
	}
	return g
}

// accumulate adds row, whose 1-based number is number, to g.
func (b *aggregateBlock) accumulate(g *group, row Row, number int) error {
	for i := range b.specs {
		spec := &b.specs[i]
		var value any
		if spec.field != "" {
			value = row[spec.field]
		}
		if err := g.accumulators[i].add(spec, value); err != nil {
			return fmt.Errorf("row %d: aggregates.%s: %w", number, spec.name, err)
		}
	}
	return nil
}

// output builds the table of group rows.
func (b *aggregateBlock) output(groups []*group) *Table {
	columns := slices.Clone(b.groupBy)
	if columns == nil {
		columns = []string{}
	}
	for _, spec := range b.specs {
		columns = append(columns, spec.name)
	}
	rows := make([]Row, len(groups))
	for i, g := range groups {
		row := make(Row, len(columns))
		for j, field := range b.groupBy {
			row[field] = g.values[j]
		}
		for j := range b.specs {
			row[b.specs[j].name] = g.accumulators[j].result(&b.specs[j])
		}
		rows[i] = row
	}
	return &Table{Columns: columns, Rows: rows}
}

// accumulator holds the running state of one aggregate over one group.
type accumulator struct {
	// count is the number of rows for count() and of non-null values
	// otherwise.
	count    int64
	intSum   int64
	floatSum float64
	isFloat  bool
	distinct map[string]struct{}
	extreme  any
}

// add takes one value into the aggregate. value is nil for count().
func (a *accumulator) add(spec *aggregateSpec, value any) error {
	if value == nil && spec.field != "" {
		return nil
	}
	a.count++
	switch spec.function {
	case "countDistinct":
		if a.distinct == nil {
			a.distinct = make(map[string]struct{})
		}
		a.distinct[string(appendKey(nil, value))] = struct{}{}
	case "sum":
		return a.addSum(spec, value)
	case "avg":
		f, ok := asFloat(value)
		if !ok {
			return fmt.Errorf("avg needs numbers, got %s", describeValue(value))
		}
		a.floatSum += f
	case "min", "max":
		if a.extreme == nil || a.isBeyondExtreme(spec, value) {
			a.extreme = value
		}
	}
	return nil
}

func (a *accumulator) isBeyondExtreme(spec *aggregateSpec, value any) bool {
	c := compareValues(value, a.extreme)
	if spec.function == "min" {
		return c < 0
	}
	return c > 0
}

// addSum adds value to an int64 sum until the first float64, and to a
// float64 sum from then on.
func (a *accumulator) addSum(spec *aggregateSpec, value any) error {
	switch v := value.(type) {
	case int64:
		if a.isFloat {
			a.floatSum += float64(v)
			return nil
		}
		sum := a.intSum + v
		if (sum > a.intSum) != (v > 0) {
			return fmt.Errorf("sum(%s) overflows int64", spec.field)
		}
		a.intSum = sum
	case float64:
		if !a.isFloat {
			a.isFloat = true
			a.floatSum = float64(a.intSum)
		}
		a.floatSum += v
	default:
		return fmt.Errorf("sum needs numbers, got %s", describeValue(value))
	}
	return nil
}

func asFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case int64:
		return float64(x), true
	case float64:
		return x, true
	}
	return 0, false
}

// result returns the aggregate's value for the group.
func (a *accumulator) result(spec *aggregateSpec) any {
	switch spec.function {
	case "count":
		return a.count
	case "countDistinct":
		return int64(len(a.distinct))
	}
	if a.count == 0 {
		return nil
	}
	switch spec.function {
	case "sum":
		if a.isFloat {
			return a.floatSum
		}
		return a.intSum
	case "avg":
		return a.floatSum / float64(a.count)
	}
	return a.extreme
}
