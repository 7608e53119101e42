package blocks

import (
	"strconv"
	"strings"
	"time"
)

// columnType is the type csv.read infers for a column.
type columnType int

const (
	typeInteger columnType = iota
	typeFloat
	typeBoolean
	typeDate
	typeText
)

// typeInference tracks which types every non-empty cell of a column seen
// so far fits. A column is integer when every non-empty cell is an
// integer, else float when every cell is a decimal number, else boolean,
// else date, else text.
type typeInference struct {
	integer, float, boolean, date bool
}

func newTypeInference() typeInference {
	return typeInference{integer: true, float: true, boolean: true, date: true}
}

// observe narrows the candidate types with one cell. Empty cells are
// nulls and fit every type.
func (t *typeInference) observe(cell string) {
	if cell == "" {
		return
	}
	if t.integer && isIntegerText(cell) {
		// An integer is also a decimal number, and never a boolean or a
		// date, so the other checks would only repeat that.
		t.boolean, t.date = false, false
		return
	}
	t.integer = false
	if t.float && !isDecimalText(cell) {
		t.float = false
	}
	if t.boolean && !strings.EqualFold(cell, "true") && !strings.EqualFold(cell, "false") {
		t.boolean = false
	}
	if t.date && !isDateText(cell) {
		t.date = false
	}
}

// merge returns the inference of the cells that t and other saw together.
// A cell rules a type out whatever cells came before it, so the types
// that remain are those both kept.
func (t typeInference) merge(other typeInference) typeInference {
	return typeInference{
		integer: t.integer && other.integer,
		float:   t.float && other.float,
		boolean: t.boolean && other.boolean,
		date:    t.date && other.date,
	}
}

func (t typeInference) result() columnType {
	switch {
	case t.integer:
		return typeInteger
	case t.float:
		return typeFloat
	case t.boolean:
		return typeBoolean
	case t.date:
		return typeDate
	}
	return typeText
}

// maxSharedValues bounds the distinct cells a cellConverter remembers.
const maxSharedValues = 1024

// cellConverter converts the cells of one column and returns one shared
// value for repeated cells. A column with few distinct values, such as a
// code or a category, then costs no allocation per row, and the garbage
// collector has fewer objects to scan. Once its cache is full and misses
// outnumber hits, it stops looking cells up.
type cellConverter struct {
	typ          columnType
	shared       map[string]any
	hits, misses int
}

func newCellConverter(typ columnType) *cellConverter {
	return &cellConverter{typ: typ, shared: make(map[string]any)}
}

func (c *cellConverter) convert(cell string) any {
	if c.shared == nil || cell == "" {
		return convertCell(c.typ, cell)
	}
	if v, ok := c.shared[cell]; ok {
		c.hits++
		return v
	}
	c.misses++
	if len(c.shared) >= maxSharedValues {
		if c.misses > c.hits {
			c.shared = nil
		}
		return convertCell(c.typ, cell)
	}
	// The clone keeps the cache from holding the whole record's text.
	cell = strings.Clone(cell)
	v := convertCell(c.typ, cell)
	c.shared[cell] = v
	return v
}

// convertCell converts a cell of a column of type typ. The cell is known
// to fit typ, because inference saw it. Empty cells become nil.
func convertCell(typ columnType, cell string) any {
	if cell == "" {
		return nil
	}
	switch typ {
	case typeInteger:
		n, _ := strconv.ParseInt(cell, 10, 64)
		return n
	case typeFloat:
		f, _ := strconv.ParseFloat(cell, 64)
		return f
	case typeBoolean:
		return strings.EqualFold(cell, "true")
	case typeDate:
		t, _ := time.Parse(time.DateOnly, cell)
		return t
	}
	return cell
}

// isIntegerText reports whether s is a decimal integer that fits int64,
// with an optional sign. A number with a leading zero, such as the ZIP
// code "02134", is not an integer, so the column keeps its text.
func isIntegerText(s string) bool {
	digits, signs := trimSigns(s)
	if signs > 1 || !allDigits(digits) || hasLeadingZero(digits) {
		return false
	}
	if len(digits) < 19 {
		return true // at most 18 digits always fit int64
	}
	_, err := strconv.ParseInt(s, 10, 64)
	return err == nil
}

// trimSigns returns s without its leading + and - characters and how
// many there were.
func trimSigns(s string) (string, int) {
	i := 0
	for i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	return s[i:], i
}

// isDecimalText reports whether s is a decimal number such as "-1.5",
// ".5" or "2e10". It rejects what strconv.ParseFloat accepts beyond that
// syntax ("NaN", "Inf", hexadecimal, underscores) and leading zeros.
func isDecimalText(s string) bool {
	body, signs := trimSigns(s)
	if signs > 1 {
		return false
	}
	mantissa, exponent, hasExponent := strings.Cut(strings.ToLower(body), "e")
	exponentDigits, exponentSigns := trimSigns(exponent)
	if hasExponent && (!allDigits(exponentDigits) || exponentSigns > 1) {
		return false
	}
	whole, fraction, _ := strings.Cut(mantissa, ".")
	if whole == "" && fraction == "" {
		return false
	}
	if (whole != "" && !allDigits(whole)) || (fraction != "" && !allDigits(fraction)) || hasLeadingZero(whole) {
		return false
	}
	_, err := strconv.ParseFloat(s, 64)
	return err == nil
}

// isDateText reports whether s is a calendar date in the form YYYY-MM-DD.
func isDateText(s string) bool {
	if len(s) != len(time.DateOnly) || s[4] != '-' || s[7] != '-' {
		return false
	}
	_, err := time.Parse(time.DateOnly, s)
	return err == nil
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func hasLeadingZero(digits string) bool {
	return len(digits) > 1 && digits[0] == '0'
}
