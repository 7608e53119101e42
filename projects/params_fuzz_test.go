package projects

import "testing"

// FuzzBind binds arbitrary JSON values to arbitrary parameter
// declarations. Bind and Convert must report problems, never panic, and
// a value they accept must convert again to itself.
func FuzzBind(f *testing.F) {
	f.Add(`[{"name": "year", "type": "integer", "min": 2012, "max": 2015}]`, `{"year": 2014}`)
	f.Add(`[{"name": "w", "type": "choice", "options": ["sun", "rain"], "default": "rain"}]`, `{"w": "fog"}`)
	f.Add(`[{"name": "d", "type": "date", "required": true}]`, `{"d": "2014-02-30"}`)
	f.Add(`[{"name": "t", "type": "datetime"}]`, `{"t": "2014-03-01T12:00:00+25:00"}`)
	f.Add(`[{"name": "n", "type": "number"}]`, `{"n": 1e400}`)
	f.Add(`[{"name": "i", "type": "integer"}]`, `{"i": 18446744073709551616}`)
	f.Add(`[{"name": "s", "type": "text", "pattern": "^[a-z]+$", "minLength": 2, "maxLength": 3}]`, `{"s": "\u00ff\u0000"}`)
	f.Add(`[{"name": "f", "type": "file"}]`, `{"f": "../../etc/passwd"}`)
	f.Add(`[{"name": "b", "type": "boolean"}]`, `{"b": "yes", "other": null}`)
	f.Fuzz(func(t *testing.T, declarations, values string) {
		p := &Project{Name: "fuzz", Blocks: []Block{{Name: "rows", Type: "inline"}}}
		if decodeJSON(declarations, &p.Parameters) != nil {
			return
		}
		var raw map[string]any
		if decodeJSON(values, &raw) != nil {
			return
		}
		p.Validate()
		typed, errs := p.Bind("parameters", raw, raw)
		if len(errs) > 0 {
			return
		}
		if _, again := p.Convert("parameters", p.JSONValues(typed)); len(again) > 0 {
			t.Errorf("bound values %v do not convert again: %v", typed, again)
		}
	})
}
