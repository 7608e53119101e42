package blocks

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
)

// expression is an expr-lang expression compiled once, when its block is
// compiled, and run for each row.
//
// Expressions read the row's fields as variables and the job's parameters
// under params. A field whose name is not an identifier is reachable as
// $env["Cost Total $"]. Before type checking, every bare identifier that
// is not a function call, a let variable or params becomes such a $env
// lookup. Without that, the checker would take a field named like a
// function (date, year, month) for the function.
type expression struct {
	// option is the option path messages name, such as "where".
	option  string
	program *vm.Program
	// fields lists the row fields the expression reads by name.
	fields []string
	// allFields is set when $env is used other than with a constant key,
	// as in `"x" in $env`, so every field must be visible.
	allFields bool
}

// Expression size limits. expr's parser recurses once per nesting level,
// so deep nesting must be rejected before parsing: half a million levels
// overflow the goroutine stack and end the process.
const (
	// MaxExpressionLength is the longest expression source in bytes.
	MaxExpressionLength = 16 << 10
	// MaxExpressionDepth is the deepest nesting of (), [] and {}.
	MaxExpressionDepth = 64
)

// checkExpressionSize rejects sources over MaxExpressionLength bytes or
// nested deeper than MaxExpressionDepth. Brackets inside string literals
// count too, which errs on the safe side.
func checkExpressionSize(option, source string) *OptionError {
	if len(source) > MaxExpressionLength {
		return &OptionError{Option: option, Message: fmt.Sprintf("is %d bytes long; expressions are limited to %d bytes", len(source), MaxExpressionLength)}
	}
	depth := 0
	for _, r := range source {
		switch r {
		case '(', '[', '{':
			depth++
			if depth > MaxExpressionDepth {
				return &OptionError{Option: option, Message: fmt.Sprintf("nests brackets deeper than %d levels", MaxExpressionDepth)}
			}
		case ')', ']', '}':
			depth--
		}
	}
	return nil
}

// compileExpression compiles source, the value of the option at path
// option. Problems are returned as OptionErrors at that path.
func compileExpression(option, source string, cc CompileContext) (*expression, []OptionError) {
	if strings.Contains(source, "${") {
		return nil, []OptionError{{Option: option, Message: "${name} placeholders are not allowed in expressions; " +
			"refer to a parameter as params.NAME"}}
	}
	if strings.TrimSpace(source) == "" {
		return nil, []OptionError{{Option: option, Message: "must not be empty"}}
	}
	if problem := checkExpressionSize(option, source); problem != nil {
		return nil, []OptionError{*problem}
	}

	collector := &referenceCollector{
		params:    cc.Params,
		callees:   make(map[ast.Node]bool),
		letNames:  make(map[string]bool),
		staticEnv: make(map[ast.Node]bool),
	}
	rewriter := &fieldRewriter{collector: collector}
	options := append(slices.Clip(expressionOptions), expr.Patch(collector), expr.Patch(rewriter), expr.Patch(budgetPatcher{}))
	program, err := expr.Compile(source, options...)

	var problems []OptionError
	for _, name := range collector.unknownParams {
		problems = append(problems, OptionError{Option: option, Message: unknownParamMessage(name, cc.Params)})
	}
	if err != nil {
		problems = append(problems, OptionError{Option: option, Message: expressionMessage(err)})
	}
	if len(problems) > 0 {
		return nil, problems
	}
	fields := slices.Sorted(maps.Keys(collector.fields))
	return &expression{option: option, program: program, fields: fields, allFields: rewriter.allFields}, nil
}

func unknownParamMessage(name string, declared map[string]string) string {
	known := "none are declared"
	if len(declared) > 0 {
		known = "the declared parameters are " + strings.Join(sortedKeys(declared), ", ")
	}
	return fmt.Sprintf("refers to params.%s, but there is no parameter named %q; %s", name, name, known)
}

// expressionMessage returns expr's message on one line, with the line and
// column where expr located the problem but without its source snippet.
func expressionMessage(err error) string {
	var located *file.Error
	if errors.As(err, &located) && located.Snippet != "" {
		return fmt.Sprintf("%s (%d:%d)", located.Message, located.Line, located.Column+1)
	}
	return err.Error()
}

// referenceCollector is the first pass over the parsed expression. It
// records what the rewriter needs to tell fields from other identifiers,
// and the parameters the expression refers to that are not declared.
type referenceCollector struct {
	params        map[string]string
	callees       map[ast.Node]bool
	letNames      map[string]bool
	staticEnv     map[ast.Node]bool
	fields        map[string]bool
	unknownParams []string
}

// Visit implements ast.Visitor.
func (c *referenceCollector) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.CallNode:
		c.callees[n.Callee] = true
	case *ast.VariableDeclaratorNode:
		c.letNames[n.Name] = true
	case *ast.MemberNode:
		base, ok := n.Node.(*ast.IdentifierNode)
		property, constant := n.Property.(*ast.StringNode)
		if !ok || !constant {
			return
		}
		switch base.Value {
		case "params":
			if _, declared := c.params[property.Value]; !declared && !slices.Contains(c.unknownParams, property.Value) {
				c.unknownParams = append(c.unknownParams, property.Value)
			}
		case "$env":
			c.staticEnv[base] = true
			c.addField(property.Value)
		}
	}
}

func (c *referenceCollector) addField(name string) {
	if name == "params" {
		return
	}
	if c.fields == nil {
		c.fields = make(map[string]bool)
	}
	c.fields[name] = true
}

// fieldRewriter is the second pass. It turns each identifier that names a
// field into a $env lookup.
type fieldRewriter struct {
	collector *referenceCollector
	allFields bool
}

// Visit implements ast.Visitor.
func (w *fieldRewriter) Visit(node *ast.Node) {
	identifier, ok := (*node).(*ast.IdentifierNode)
	if !ok {
		return
	}
	c := w.collector
	switch {
	case identifier.Value == "$env":
		if !c.staticEnv[identifier] {
			w.allFields = true
		}
	case identifier.Value == "params", c.callees[identifier], c.letNames[identifier.Value]:
	default:
		c.addField(identifier.Value)
		lookup := &ast.MemberNode{Node: &ast.IdentifierNode{Value: "$env"}, Property: &ast.StringNode{Value: identifier.Value}}
		ast.Patch(node, lookup)
	}
}

// checkFields returns an error naming the first field the expression
// reads that the input does not have, since a misspelled field name would
// otherwise read as null on every row.
func (e *expression) checkFields(columns []string) error {
	for _, field := range e.fields {
		if !slices.Contains(columns, field) {
			return fmt.Errorf("%s: unknown field %q; the input has the columns %s",
				e.option, field, strings.Join(columns, ", "))
		}
	}
	return nil
}

// rowError reports a failure evaluating e on the row with 1-based number
// row.
func (e *expression) rowError(row int, err error) error {
	message := expressionMessage(err)
	if strings.Contains(message, "<nil>") {
		message += "; a value is null here, so test it with != nil or give a default with ??"
	}
	return fmt.Errorf("row %d: %s: %s", row, e.option, message)
}

// scope is the variable environment of expressions for one row at a time.
// A block makes one scope per run and reuses it for every row, so a scope
// is not safe for concurrent use.
type scope struct {
	env       map[string]any
	params    map[string]any
	fields    []string
	allFields bool
	machine   vm.VM
	budget    *byteBudget
}

// newScope returns a scope for evaluating expressions with the job's
// parameters.
func newScope(params map[string]any, expressions []*expression) *scope {
	if params == nil {
		params = map[string]any{}
	}
	budget := &byteBudget{}
	s := &scope{env: map[string]any{"params": params, budgetKey: budget}, params: params, budget: budget}
	for _, e := range expressions {
		s.allFields = s.allFields || e.allFields
		for _, field := range e.fields {
			if !slices.Contains(s.fields, field) {
				s.fields = append(s.fields, field)
			}
		}
	}
	return s
}

// load makes row the one that expressions see. Only the fields that the
// expressions read are copied, unless one of them uses $env freely.
func (s *scope) load(row Row) {
	if s.allFields {
		clear(s.env)
		maps.Copy(s.env, row)
		s.env["params"] = s.params
		s.env[budgetKey] = s.budget
		return
	}
	for _, field := range s.fields {
		s.env[field] = row[field]
	}
}

// evaluate runs e on the loaded row, with a fresh MaxExpressionBytes
// budget.
func (s *scope) evaluate(e *expression) (any, error) {
	s.budget.left = MaxExpressionBytes
	return s.machine.Run(e.program, s.env)
}
