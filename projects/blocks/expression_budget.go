package blocks

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/builtin"
	"github.com/expr-lang/expr/vm/runtime"
)

// MaxExpressionBytes bounds the bytes of text that one evaluation of an
// expression, for one row, may build with +, repeat, replace, join,
// upper, lower, string, toJSON and toBase64. Past it the evaluation fails
// with errExpressionBudget. expr's own memory budget (1e6 array elements
// and loop iterations per evaluation, expr v1.17.8) bounds the rest, so a
// pathological expression fails instead of exhausting memory.
const MaxExpressionBytes = 16 << 20

// errExpressionBudget is returned by an evaluation that builds more than
// MaxExpressionBytes of text.
var errExpressionBudget = fmt.Errorf("the expression builds more than %d bytes of text for one row", MaxExpressionBytes)

// budgetKey is the variable under which a scope passes its byteBudget to
// the bounded functions. No identifier can name it, since it starts with
// a NUL byte.
const budgetKey = "\x00budget"

// byteBudget counts the bytes of text one evaluation still may build.
type byteBudget struct {
	left int
}

func (b *byteBudget) spend(n int) error {
	if n < 0 || n > b.left {
		b.left = 0
		return errExpressionBudget
	}
	b.left -= n
	return nil
}

// boundedPrefix names the function that replaces a bounded builtin.
const boundedPrefix = "bounded."

// budgetedBuiltins maps each builtin that can build large text to an
// estimate of the bytes it builds from its arguments. The estimate is
// checked before the builtin runs, so nothing past the budget is built.
var budgetedBuiltins = map[string]func(args []any) int{
	"repeat":   estimateRepeat,
	"replace":  estimateReplace,
	"join":     estimateJoin,
	"upper":    func(args []any) int { return 3 * textSize(args[0]) },
	"lower":    func(args []any) int { return 3 * textSize(args[0]) },
	"string":   func(args []any) int { return 6 * valueSize(args[0]) },
	"toJSON":   func(args []any) int { return 6 * valueSize(args[0]) },
	"toBase64": func(args []any) int { return 2 * textSize(args[0]) },
}

// budgetOptions declares the bounded versions of the builtins and of +.
func budgetOptions() []expr.Option {
	budgetType := reflect.TypeFor[*byteBudget]()
	options := []expr.Option{expr.Function(boundedPrefix+"add", boundedAdd)}
	for name, estimate := range budgetedBuiltins {
		fn := builtin.Builtins[builtin.Index[name]]
		var types []any
		for _, t := range fn.Types {
			in := []reflect.Type{budgetType}
			for i := range t.NumIn() {
				in = append(in, t.In(i))
			}
			out := []reflect.Type{t.Out(0)}
			types = append(types, reflect.New(reflect.FuncOf(in, out, t.IsVariadic())).Interface())
		}
		options = append(options, expr.Function(boundedPrefix+name, boundedBuiltin(fn, estimate), types...))
	}
	return options
}

// boundedBuiltin calls fn after charging its estimated output to the
// budget in its first argument.
func boundedBuiltin(fn *builtin.Function, estimate func(args []any) int) func(args ...any) (any, error) {
	return func(args ...any) (any, error) {
		budget, ok := args[0].(*byteBudget)
		if !ok {
			return nil, errors.New("the expression budget is missing")
		}
		args = args[1:]
		if err := budget.spend(estimate(args)); err != nil {
			return nil, err
		}
		switch {
		case fn.Fast != nil:
			return fn.Fast(args[0]), nil
		case fn.Safe != nil:
			result, _, err := fn.Safe(args...)
			return result, err
		default:
			return fn.Func(args...)
		}
	}
}

// boundedAdd is + with the text it builds charged to the budget. Numbers,
// times and durations add as expr adds them.
func boundedAdd(args ...any) (any, error) {
	budget, ok := args[0].(*byteBudget)
	if !ok {
		return nil, errors.New("the expression budget is missing")
	}
	a, b := args[1], args[2]
	if x, ok := a.(string); ok {
		if y, ok := b.(string); ok {
			if err := budget.spend(len(x) + len(y)); err != nil {
				return nil, err
			}
			return x + y, nil
		}
	}
	return runtime.Add(a, b), nil
}

func estimateRepeat(args []any) int {
	s := textSize(args[0])
	n := int(runtime.ToInt(args[1]))
	if n <= 0 || s == 0 {
		return 0
	}
	if n > MaxExpressionBytes/s {
		return -1
	}
	return s * n
}

func estimateReplace(args []any) int {
	s, _ := args[0].(string)
	old, _ := args[1].(string)
	replacement, _ := args[2].(string)
	count := strings.Count(s, old)
	if len(replacement) > 0 && count > MaxExpressionBytes/len(replacement) {
		return -1
	}
	return len(s) + count*len(replacement)
}

func estimateJoin(args []any) int {
	size := valueSize(args[0])
	if len(args) > 1 {
		if list, ok := args[0].([]any); ok {
			glue := textSize(args[1])
			if glue > 0 && len(list) > MaxExpressionBytes/glue {
				return -1
			}
			size += glue * len(list)
		}
	}
	return size
}

func textSize(v any) int {
	s, _ := v.(string)
	return len(s)
}

// valueSize estimates the bytes of v's text form: its strings plus 16
// bytes for every other value. It stops counting past the budget.
func valueSize(v any) int {
	size := 0
	var walk func(v any)
	walk = func(v any) {
		if size > MaxExpressionBytes {
			return
		}
		switch x := v.(type) {
		case string:
			size += len(x) + 2
		case []any:
			for _, item := range x {
				walk(item)
			}
		case map[string]any:
			for k, item := range x {
				size += len(k)
				walk(item)
			}
		default:
			size += 16
		}
	}
	walk(v)
	return size
}

// budgetPatcher is the last pass over an expression. It turns each + that
// is not known to add numbers, and each call of a builtin in
// budgetedBuiltins, into a call of the bounded version, with the row's
// budget as the first argument.
type budgetPatcher struct{}

// Visit implements ast.Visitor.
func (budgetPatcher) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.BinaryNode:
		if n.Operator != "+" || (numeric(n.Left.Type()) && numeric(n.Right.Type())) {
			return
		}
		ast.Patch(node, boundedCall("add", n.Left, n.Right))
	case *ast.BuiltinNode:
		if budgetedBuiltins[n.Name] == nil {
			return
		}
		ast.Patch(node, boundedCall(n.Name, n.Arguments...))
	}
}

func boundedCall(name string, args ...ast.Node) *ast.CallNode {
	budget := &ast.MemberNode{Node: &ast.IdentifierNode{Value: "$env"}, Property: &ast.StringNode{Value: budgetKey}}
	return &ast.CallNode{
		Callee:    &ast.IdentifierNode{Value: boundedPrefix + name},
		Arguments: append([]ast.Node{budget}, args...),
	}
}

func numeric(t reflect.Type) bool {
	if t == nil {
		return false
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return true
	}
	return false
}
