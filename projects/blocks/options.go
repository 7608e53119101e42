package blocks

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Error formats the problem as "OPTION: MESSAGE", or MESSAGE alone when
// Option is empty.
func (e OptionError) Error() string {
	if e.Option == "" {
		return e.Message
	}
	return e.Option + ": " + e.Message
}

// placeholderPattern matches a ${name} placeholder. Names follow the rule
// for parameter names.
var placeholderPattern = regexp.MustCompile(`\$\{[A-Za-z][A-Za-z0-9_.-]{0,63}\}`)

// optionReader reads a block's options through typed accessors. It
// collects every problem instead of stopping at the first, and remembers
// which keys were read so that finish can report unknown keys.
type optionReader struct {
	options  map[string]any
	cc       CompileContext
	read     []string
	problems []OptionError
}

func newOptionReader(options map[string]any, cc CompileContext) *optionReader {
	return &optionReader{options: options, cc: cc}
}

// addProblem records a problem with the option at path.
func (r *optionReader) addProblem(path, format string, args ...any) {
	r.problems = append(r.problems, OptionError{Option: path, Message: fmt.Sprintf(format, args...)})
}

// value returns the raw value of the option name and whether it is set.
// A missing required option is recorded as a problem. A JSON null counts
// as not set.
func (r *optionReader) value(name string, required bool) (any, bool) {
	r.read = append(r.read, name)
	v, ok := r.options[name]
	if !ok || v == nil {
		if required {
			r.addProblem(name, "missing required option")
		}
		return nil, false
	}
	return v, true
}

// isDeferred reports whether v is text that still holds a ${name}
// placeholder in a deferred compile, so its final value cannot be
// checked yet.
//
// NOTE: Accessors return their default for such a value, so a block
// compiled with CompileContext.Deferred set is only for validation and
// must not be run.
func (r *optionReader) isDeferred(v any) bool {
	s, ok := v.(string)
	return ok && r.cc.Deferred && placeholderPattern.MatchString(s)
}

// text reads a string option. An empty string counts as missing when the
// option is required.
func (r *optionReader) text(name string, required bool) string {
	v, ok := r.value(name, required)
	if !ok {
		return ""
	}
	s, isString := v.(string)
	if !isString {
		r.addProblem(name, "must be text, got %s", describeOption(v))
		return ""
	}
	if s == "" && required {
		r.addProblem(name, "must not be empty")
	}
	return s
}

// boolean reads a boolean option, or returns fallback when it is not set.
// The strings "true" and "false" are accepted because a substituted
// ${name} placeholder produces text.
func (r *optionReader) boolean(name string, fallback bool) bool {
	v, ok := r.value(name, false)
	if !ok || r.isDeferred(v) {
		return fallback
	}
	switch b := v.(type) {
	case bool:
		return b
	case string:
		if b == "true" || b == "false" {
			return b == "true"
		}
	}
	r.addProblem(name, "must be true or false, got %s", describeOption(v))
	return fallback
}

// number reads a finite number option, accepting numeric text for the
// same reason as boolean. It returns 0 when the option is missing or
// invalid.
func (r *optionReader) number(name string, required bool) float64 {
	v, ok := r.value(name, required)
	if !ok || r.isDeferred(v) {
		return 0
	}
	f, isNumber := optionNumber(v)
	if !isNumber || math.IsNaN(f) || math.IsInf(f, 0) {
		r.addProblem(name, "must be a number, got %s", describeOption(v))
		return 0
	}
	return f
}

// nonNegativeInteger reads an integer option that must be 0 or more.
func (r *optionReader) nonNegativeInteger(name string, required bool) int64 {
	v, ok := r.value(name, required)
	if !ok || r.isDeferred(v) {
		return 0
	}
	n, isInteger := optionInteger(v)
	if !isInteger || n < 0 {
		r.addProblem(name, "must be a non-negative integer, got %s", describeOption(v))
		return 0
	}
	return n
}

// names reads a list of non-empty field names. When single is true, one
// name given as a string is accepted as a list of one.
func (r *optionReader) names(name string, required, single bool) []string {
	v, ok := r.value(name, required)
	if !ok {
		return nil
	}
	if s, isString := v.(string); isString && single {
		if s == "" {
			r.addProblem(name, "must not be empty")
			return nil
		}
		return []string{s}
	}
	items, isList := v.([]any)
	if !isList {
		expected := "an array of field names"
		if single {
			expected = "a field name or an array of field names"
		}
		r.addProblem(name, "must be %s, got %s", expected, describeOption(v))
		return nil
	}
	return r.nameItems(name, items)
}

// nameItems checks that every item of a names option is a distinct,
// non-empty string.
func (r *optionReader) nameItems(name string, items []any) []string {
	result := make([]string, 0, len(items))
	for i, item := range items {
		path := fmt.Sprintf("%s[%d]", name, i)
		s, isString := item.(string)
		switch {
		case !isString:
			r.addProblem(path, "must be a field name, got %s", describeOption(item))
		case s == "":
			r.addProblem(path, "must not be empty")
		case slices.Contains(result, s):
			r.addProblem(path, "repeats the field %q", s)
		default:
			result = append(result, s)
		}
	}
	return result
}

// textMap reads an object whose keys are non-empty and whose values are
// text. It returns nil when the option is missing or not an object.
func (r *optionReader) textMap(name string, required bool) map[string]string {
	v, ok := r.value(name, required)
	if !ok {
		return nil
	}
	object, isObject := v.(map[string]any)
	if !isObject {
		r.addProblem(name, "must be an object of text values, got %s", describeOption(v))
		return nil
	}
	result := make(map[string]string, len(object))
	for _, key := range sortedKeys(object) {
		path := name + "." + key
		s, isString := object[key].(string)
		switch {
		case key == "":
			r.addProblem(name, "must not have an empty key")
		case !isString:
			r.addProblem(path, "must be text, got %s", describeOption(object[key]))
		default:
			result[key] = s
		}
	}
	return result
}

// finish records every option key that no accessor read and returns all
// problems found, or nil.
func (r *optionReader) finish() []OptionError {
	for _, key := range sortedKeys(r.options) {
		if slices.Contains(r.read, key) {
			continue
		}
		valid := "none"
		if len(r.read) > 0 {
			valid = strings.Join(r.read, ", ")
		}
		r.addProblem(key, "unknown option; valid options are %s", valid)
	}
	return r.problems
}

// optionNumber converts a decoded option value to float64. It accepts
// json.Number, the Go numeric types YAML decoders produce, and numeric
// text.
func optionNumber(v any) (float64, bool) {
	switch n := v.(type) {
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	case float64:
		return n, true
	case float32:
		return float64(n), true
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(n), 64)
		return f, err == nil
	}
	if i, ok := goInteger(v); ok {
		return float64(i), true
	}
	return 0, false
}

// optionInteger converts a decoded option value to int64 when it is a
// whole number within range.
func optionInteger(v any) (int64, bool) {
	if i, ok := goInteger(v); ok {
		return i, true
	}
	var text string
	switch n := v.(type) {
	case json.Number:
		text = n.String()
	case string:
		text = strings.TrimSpace(n)
	case float64:
		if n != math.Trunc(n) || math.Abs(n) >= 1<<63 {
			return 0, false
		}
		return int64(n), true
	default:
		return 0, false
	}
	i, err := strconv.ParseInt(text, 10, 64)
	return i, err == nil
}

// goInteger converts Go integer types to int64, rejecting unsigned values
// above math.MaxInt64.
func goInteger(v any) (int64, bool) {
	switch n := v.(type) {
	case int:
		return int64(n), true
	case int8:
		return int64(n), true
	case int16:
		return int64(n), true
	case int32:
		return int64(n), true
	case int64:
		return n, true
	case uint:
		return int64(n), uint64(n) <= math.MaxInt64
	case uint8:
		return int64(n), true
	case uint16:
		return int64(n), true
	case uint32:
		return int64(n), true
	case uint64:
		return int64(n), n <= math.MaxInt64
	}
	return 0, false
}

// describeOption renders an option value for a message: text quoted,
// numbers and booleans as written, arrays and objects by their kind.
func describeOption(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return strconv.Quote(x)
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprint(v)
}

// sortedKeys returns the keys of m in ascending order.
func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
