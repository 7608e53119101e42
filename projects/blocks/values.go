package blocks

import (
	"cmp"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"time"
)

// typeName returns the name messages use for the type of a table value.
func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case int64:
		return "integer"
	case float64:
		return "float"
	case string:
		return "text"
	case time.Time:
		return "date"
	}
	return fmt.Sprintf("%T", v)
}

// describeValue renders a table value and its type for a message, such as
// `"abc" (text)`.
func describeValue(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return strconv.Quote(x) + " (text)"
	case time.Time:
		return formatTime(x) + " (date)"
	}
	return fmt.Sprintf("%v (%s)", v, typeName(v))
}

// normalizeValue converts a value an expression returned to one of the
// table types. Integer types, including defined ones such as time.Month,
// become int64, and other types defined on bool, float or string become
// their base type. A time.Duration becomes its text, such as "36h0m0s".
// Arrays and maps become their JSON text, as nested values do in
// json.read. Any other type is an error.
func normalizeValue(v any) (any, error) {
	switch x := v.(type) {
	case nil, bool, int64, float64, string, time.Time:
		return v, nil
	case int:
		return int64(x), nil
	case float32:
		return float64(x), nil
	case time.Duration:
		return x.String(), nil
	}
	if i, ok := goInteger(v); ok {
		return i, nil
	}
	value := reflect.ValueOf(v)
	switch value.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return value.Int(), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if value.Uint() <= math.MaxInt64 {
			return int64(value.Uint()), nil
		}
	case reflect.Float32, reflect.Float64:
		return value.Float(), nil
	case reflect.Bool:
		return value.Bool(), nil
	case reflect.String:
		return value.String(), nil
	case reflect.Slice, reflect.Array, reflect.Map:
		text, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("converting %T to JSON text: %w", v, err)
		}
		return string(text), nil
	}
	return nil, fmt.Errorf("unsupported result type %T; expected null, boolean, number, text or date", v)
}

// Value classes in the order compareValues sorts values of different
// types.
const (
	classBool = iota
	classNumber
	classTime
	classText
	classOther
)

func valueClass(v any) int {
	switch v.(type) {
	case bool:
		return classBool
	case int64, float64:
		return classNumber
	case time.Time:
		return classTime
	case string:
		return classText
	}
	return classOther
}

// compareValues orders two non-null table values: false before true,
// numbers by value (int64 and float64 compare exactly with each other,
// NaN first), times chronologically and text by bytes. Values of
// different types order as boolean < number < date < text.
func compareValues(a, b any) int {
	ca, cb := valueClass(a), valueClass(b)
	if ca != cb {
		return cmp.Compare(ca, cb)
	}
	switch x := a.(type) {
	case bool:
		y := b.(bool)
		return cmp.Compare(boolRank(x), boolRank(y))
	case int64, float64:
		return compareNumber(a, b)
	case time.Time:
		return x.Compare(b.(time.Time))
	case string:
		return cmp.Compare(x, b.(string))
	}
	return cmp.Compare(fmt.Sprint(a), fmt.Sprint(b))
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

// compareNumber compares two values that are each int64 or float64.
func compareNumber(a, b any) int {
	switch x := a.(type) {
	case int64:
		if y, ok := b.(int64); ok {
			return cmp.Compare(x, y)
		}
		return compareIntFloat(x, b.(float64))
	case float64:
		if y, ok := b.(float64); ok {
			return cmp.Compare(x, y)
		}
		return -compareIntFloat(b.(int64), x)
	}
	panic(fmt.Sprintf("compareNumber called with %T", a))
}

// compareIntFloat compares i with f without the rounding of converting i
// to float64, which loses precision above 2^53.
func compareIntFloat(i int64, f float64) int {
	switch {
	case math.IsNaN(f):
		return 1
	case f >= math.MaxInt64:
		return -1
	case f < math.MinInt64:
		return 1
	}
	whole := math.Trunc(f)
	if c := cmp.Compare(i, int64(whole)); c != 0 {
		return c
	}
	return cmp.Compare(0, f-whole)
}

// Tags of the key encoding in appendKey.
const (
	keyNull byte = iota
	keyFalse
	keyTrue
	keyInt
	keyFloat
	keyText
	keyTime
	keyOther
)

// appendKey appends an encoding of v to buf. Two values get the same
// encoding exactly when they are equal for grouping and joining. An
// integral float64 equals the int64 of the same value, all NaNs are equal
// and times are equal when they are the same instant.
func appendKey(buf []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(buf, keyNull)
	case bool:
		if x {
			return append(buf, keyTrue)
		}
		return append(buf, keyFalse)
	case int64:
		return binary.LittleEndian.AppendUint64(append(buf, keyInt), uint64(x))
	case float64:
		return appendFloatKey(buf, x)
	case string:
		buf = binary.AppendUvarint(append(buf, keyText), uint64(len(x)))
		return append(buf, x...)
	case time.Time:
		buf = binary.LittleEndian.AppendUint64(append(buf, keyTime), uint64(x.Unix()))
		return binary.LittleEndian.AppendUint32(buf, uint32(x.Nanosecond()))
	}
	text := fmt.Sprint(v)
	buf = binary.AppendUvarint(append(buf, keyOther), uint64(len(text)))
	return append(buf, text...)
}

func appendFloatKey(buf []byte, f float64) []byte {
	if f == math.Trunc(f) && f >= math.MinInt64 && f < math.MaxInt64 {
		return appendKey(buf, int64(f))
	}
	if math.IsNaN(f) {
		f = math.NaN()
	}
	return binary.LittleEndian.AppendUint64(append(buf, keyFloat), math.Float64bits(f))
}
