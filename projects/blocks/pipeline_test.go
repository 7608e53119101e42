package blocks

import (
	"encoding/csv"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// monthlyRain is one month of the independent computation in
// TestPipelineRainyMonths2014.
type monthlyRain struct {
	month   int64
	days    int64
	rain    float64
	tempMax float64
}

// rainyMonths2014 computes, straight from the CSV text, the count of rainy
// days in 2014, their precipitation and their mean temp_max per month, in
// order of first appearance.
func rainyMonths2014(t *testing.T) []monthlyRain {
	t.Helper()
	file, err := os.Open(filepath.Join(examplesDir, "seattle-weather.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	records, err := csv.NewReader(file).ReadAll()
	if err != nil {
		t.Fatal(err)
	}

	header := map[string]int{}
	for i, name := range records[0] {
		header[name] = i
	}
	var months []monthlyRain
	position := map[int64]int{}
	for _, record := range records[1:] {
		day := record[header["date"]]
		if record[header["weather"]] != "rain" || day[:4] != "2014" {
			continue
		}
		month, _ := strconv.ParseInt(day[5:7], 10, 64)
		if _, ok := position[month]; !ok {
			position[month] = len(months)
			months = append(months, monthlyRain{month: month})
		}
		m := &months[position[month]]
		precipitation, _ := strconv.ParseFloat(record[header["precipitation"]], 64)
		tempMax, _ := strconv.ParseFloat(record[header["temp_max"]], 64)
		m.days++
		m.rain += precipitation
		m.tempMax += tempMax
	}
	for i := range months {
		months[i].tempMax /= float64(months[i].days)
	}
	return months
}

func TestPipelineRainyMonths2014(t *testing.T) {
	env := &Env{FilesDir: examplesDir}
	read := compileKind(t, "csv.read", `{"path": "seattle-weather.csv"}`, CompileContext{})
	filter := compileKind(t, "filter", `{"where": "weather == \"rain\" && year(date) == 2014"}`, CompileContext{})
	compute := compileKind(t, "compute", `{"fields": {"month": "month(date)"}}`, CompileContext{})
	aggregate := compileKind(t, "aggregate", `{"groupBy": ["month"],
		"aggregates": {"days": "count()", "rain": "sum(precipitation)", "hot": "avg(temp_max)"}}`, CompileContext{})

	table := runBlock(t, read, env)
	table = runBlock(t, filter, env, table)
	table = runBlock(t, compute, env, table)
	table = runBlock(t, aggregate, env, table)

	want := rainyMonths2014(t)
	if len(want) == 0 {
		t.Fatal("the independent computation found no rainy days in 2014")
	}
	assertColumns(t, table, "month", "days", "hot", "rain")
	if len(table.Rows) != len(want) {
		t.Fatalf("got %d months, want %d", len(table.Rows), len(want))
	}
	for i, w := range want {
		row := table.Rows[i]
		if row["month"] != w.month {
			t.Errorf("row %d: month = %#v, want %d", i, row["month"], w.month)
		}
		if row["days"] != w.days {
			t.Errorf("month %d: days = %#v, want %d", w.month, row["days"], w.days)
		}
		if rain, ok := row["rain"].(float64); !ok || math.Abs(rain-w.rain) > 1e-9 {
			t.Errorf("month %d: rain = %#v, want %v", w.month, row["rain"], w.rain)
		}
		if hot, ok := row["hot"].(float64); !ok || math.Abs(hot-w.tempMax) > 1e-9 {
			t.Errorf("month %d: hot = %#v, want %v", w.month, row["hot"], w.tempMax)
		}
	}
}
