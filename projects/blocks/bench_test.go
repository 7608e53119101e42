package blocks

import (
	"testing"
)

func BenchmarkCSVReadBirdstrikes(b *testing.B) {
	block := compileKind(b, "csv.read", `{"path": "birdstrikes.csv"}`, CompileContext{})
	env := &Env{FilesDir: examplesDir}
	b.ReportAllocs()
	for b.Loop() {
		runBlock(b, block, env)
	}
}

func BenchmarkFilterAggregateSeattle(b *testing.B) {
	env := &Env{FilesDir: examplesDir, Params: map[string]any{"weather": "rain"}}
	cc := CompileContext{Params: map[string]string{"weather": "choice"}}
	input := runBlock(b, compileKind(b, "csv.read", `{"path": "seattle-weather.csv"}`, cc), env)
	filter := compileKind(b, "filter", `{"where": "weather == params.weather && year(date) >= 2013"}`, cc)
	aggregate := compileKind(b, "aggregate", `{"groupBy": ["weather"],
		"aggregates": {"days": "count()", "rain": "sum(precipitation)", "hot": "max(temp_max)"}}`, cc)
	b.ReportAllocs()
	for b.Loop() {
		filtered := runBlock(b, filter, env, input)
		runBlock(b, aggregate, env, filtered)
	}
}

func BenchmarkComputeSeattle(b *testing.B) {
	env := &Env{FilesDir: examplesDir}
	input := runBlock(b, compileKind(b, "csv.read", `{"path": "seattle-weather.csv"}`, CompileContext{}), env)
	compute := compileKind(b, "compute", `{"fields": {"month": "month(date)", "range": "temp_max - temp_min"}}`,
		CompileContext{})
	b.ReportAllocs()
	for b.Loop() {
		runBlock(b, compute, env, input)
	}
}
