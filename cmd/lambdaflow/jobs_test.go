package main

import (
	"encoding/csv"
	"math"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"
)

// monthSummary is one expected result row of seattle-weather.
type monthSummary struct {
	days          int
	precipitation float64
	tempMaxSum    float64
}

// seattleByHand computes the seattle-weather result for weather and year
// straight from the CSV, independently of the blocks.
func seattleByHand(t *testing.T, weather string, year int) map[int]*monthSummary {
	t.Helper()
	f, err := os.Open("../../examples/files/seattle-weather.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	records, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	months := map[int]*monthSummary{}
	for _, rec := range records[1:] {
		date, err := time.Parse("2006-01-02", rec[0])
		if err != nil {
			t.Fatal(err)
		}
		if rec[5] != weather || date.Year() != year {
			continue
		}
		precipitation, _ := strconv.ParseFloat(rec[1], 64)
		tempMax, _ := strconv.ParseFloat(rec[2], 64)
		m := months[int(date.Month())]
		if m == nil {
			m = &monthSummary{}
			months[int(date.Month())] = m
		}
		m.days++
		m.precipitation += precipitation
		m.tempMaxSum += tempMax
	}
	return months
}

func TestSeattleWeatherMatchesCSV(t *testing.T) {
	s := startServer(t, t.TempDir())

	j := s.execute("seattle-weather", nil)
	j = s.waitFinal(j.ID)
	if j.State != "COMPLETED" {
		t.Fatalf("state = %s, error %+v", j.State, j.Error)
	}
	want := seattleByHand(t, "rain", 2014)
	if j.Result == nil {
		t.Fatal("job has no result")
	}
	if len(j.Result.Rows) != len(want) {
		t.Fatalf("result has %d rows, want %d: %v", len(j.Result.Rows), len(want), j.Result.Rows)
	}
	prev := 0
	for _, row := range j.Result.Rows {
		month := int(row["month"].(float64))
		if month <= prev {
			t.Errorf("month %d follows %d; rows must be sorted by month", month, prev)
		}
		prev = month
		m := want[month]
		if m == nil {
			t.Errorf("month %d has no rainy days in 2014", month)
			continue
		}
		if got := int(row["days"].(float64)); got != m.days {
			t.Errorf("month %d: days = %d, want %d", month, got, m.days)
		}
		if got := row["precipitation"].(float64); math.Abs(got-m.precipitation) > 1e-9 {
			t.Errorf("month %d: precipitation = %v, want %v", month, got, m.precipitation)
		}
		if got := row["avg_temp_max"].(float64); math.Abs(got-m.tempMaxSum/float64(m.days)) > 1e-9 {
			t.Errorf("month %d: avg_temp_max = %v, want %v", month, got, m.tempMaxSum/float64(m.days))
		}
	}
	if len(j.Outputs) != 1 || j.Outputs[0].Name != "rain-2014.csv" {
		t.Fatalf("outputs = %+v, want rain-2014.csv", j.Outputs)
	}
	resp := s.do("GET", j.Outputs[0].URL, nil, nil)
	expectStatus(t, resp, http.StatusOK)

	var snapshot struct {
		Definition struct {
			Name string `json:"name"`
		} `json:"definition"`
		Parameters map[string]any `json:"parameters"`
	}
	expectStatus(t, s.do("GET", "/api/v1/jobs/"+j.ID+"/definition", nil, &snapshot), http.StatusOK)
	if snapshot.Definition.Name != "seattle-weather" {
		t.Errorf("definition name = %q, want seattle-weather", snapshot.Definition.Name)
	}
	if snapshot.Parameters["weather"] != "rain" || snapshot.Parameters["year"] != 2014.0 {
		t.Errorf("snapshot parameters = %v, want rain and 2014", snapshot.Parameters)
	}
}

func TestParametersChangeResult(t *testing.T) {
	s := startServer(t, t.TempDir())

	var values map[string]any
	resp := s.do("PATCH", "/api/v1/projects/seattle-weather/parameters", map[string]any{"weather": "sun", "year": "2013"}, &values)
	expectStatus(t, resp, http.StatusOK)
	j := s.waitFinal(s.execute("seattle-weather", nil).ID)
	if j.State != "COMPLETED" {
		t.Fatalf("state = %s, error %+v", j.State, j.Error)
	}
	want := seattleByHand(t, "sun", 2013)
	if len(j.Result.Rows) != len(want) {
		t.Fatalf("result has %d rows, want %d", len(j.Result.Rows), len(want))
	}
	for _, row := range j.Result.Rows {
		month := int(row["month"].(float64))
		if got := int(row["days"].(float64)); got != want[month].days {
			t.Errorf("month %d: days = %d, want %d", month, got, want[month].days)
		}
	}
}

func TestExamplesComplete(t *testing.T) {
	s := startServer(t, t.TempDir(), "--concurrent-jobs", "2")

	for _, name := range []string{"flight-delays", "bird-strikes"} {
		j := s.waitFinal(s.execute(name, nil).ID)
		if j.State != "COMPLETED" {
			t.Fatalf("%s: state = %s, error %+v", name, j.State, j.Error)
		}
		if j.Result == nil || len(j.Result.Rows) == 0 {
			t.Fatalf("%s: no result rows", name)
		}
		if len(j.Outputs) != 1 {
			t.Fatalf("%s: outputs = %+v, want one file", name, j.Outputs)
		}
	}
}

func TestDefaultLimitRunsOneJob(t *testing.T) {
	s := startServer(t, t.TempDir())
	s.createSleeper("first", 60)
	s.createSleeper("second", 60)
	s.createSleeper("third", 60)

	a := s.execute("first", nil)
	s.waitState(a.ID, "RUNNING")
	b := s.execute("second", nil)
	if b = s.job(b.ID); b.State != "QUEUED" || b.WaitingFor == nil || b.WaitingFor.Reason != "SLOT" {
		t.Fatalf("second job: state %s, waitingFor %+v; want QUEUED for a SLOT", b.State, b.WaitingFor)
	}

	var settings struct {
		ConcurrentJobs    int `json:"concurrentJobs"`
		MaxConcurrentJobs int `json:"maxConcurrentJobs"`
	}
	s.do("GET", "/api/v1/settings", nil, &settings)
	if settings.MaxConcurrentJobs < 2 {
		t.Skipf("this machine has %d usable core(s); two slots need two", settings.MaxConcurrentJobs)
	}
	resp := s.do("PATCH", "/api/v1/settings", map[string]any{"concurrentJobs": 2}, &settings)
	expectStatus(t, resp, http.StatusOK)
	if settings.ConcurrentJobs != 2 {
		t.Fatalf("concurrentJobs = %d after PATCH to 2", settings.ConcurrentJobs)
	}
	s.waitState(b.ID, "RUNNING")
	c := s.execute("third", nil)
	if c = s.job(c.ID); c.State != "QUEUED" {
		t.Fatalf("third job: state %s, want QUEUED while two run", c.State)
	}
	if a = s.job(a.ID); a.State != "RUNNING" {
		t.Fatalf("first job: state %s, want RUNNING", a.State)
	}
}

func TestSameProjectBlocks(t *testing.T) {
	s := startServer(t, t.TempDir(), "--concurrent-jobs", "2")
	s.createSleeper("sleepy", 60)

	a := s.execute("sleepy", nil)
	s.waitState(a.ID, "RUNNING")
	b := s.execute("sleepy", nil)
	b = s.job(b.ID)
	if b.State != "BLOCKED" {
		t.Fatalf("second job: state %s, want BLOCKED", b.State)
	}
	if b.WaitingFor == nil || b.WaitingFor.Reason != "PROJECT_LOCK" || b.WaitingFor.BlockedBy == nil || *b.WaitingFor.BlockedBy != a.ID {
		t.Fatalf("second job waitingFor = %+v, want PROJECT_LOCK blocked by %s", b.WaitingFor, a.ID)
	}

	var stopped job
	expectStatus(t, s.do("POST", "/api/v1/jobs/"+a.ID+"/stop", map[string]any{"reason": "test"}, &stopped), http.StatusOK)
	s.waitState(a.ID, "CANCELLED")
	s.waitState(b.ID, "RUNNING")
}

func TestStopRunningJob(t *testing.T) {
	s := startServer(t, t.TempDir())
	s.createSleeper("sleepy", 3600)
	s.createSleeper("next", 0)

	a := s.execute("sleepy", nil)
	s.waitJob(a.ID, "in its delay block", func(j job) bool {
		return j.State == "RUNNING" && len(j.Blocks) == 3 && j.Blocks[1].State == "RUNNING"
	})
	b := s.execute("next", nil)

	start := time.Now()
	expectStatus(t, s.do("POST", "/api/v1/jobs/"+a.ID+"/stop", map[string]any{"reason": "too slow"}, nil), http.StatusOK)
	a = s.waitState(a.ID, "CANCELLED")
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Errorf("stop took %s, want under a second", elapsed)
	}
	if a.Blocks[1].State != "CANCELLED" {
		t.Errorf("delay block state = %s, want CANCELLED", a.Blocks[1].State)
	}
	if a.Blocks[2].State != "SKIPPED" {
		t.Errorf("downstream block state = %s, want SKIPPED", a.Blocks[2].State)
	}
	if b = s.waitFinal(b.ID); b.State != "COMPLETED" {
		t.Fatalf("next job: state %s, want COMPLETED once the slot is free", b.State)
	}

	resp := s.do("POST", "/api/v1/jobs/"+a.ID+"/stop", nil, nil)
	expectStatus(t, resp, http.StatusConflict)
	expectProblemCode(t, resp, "JOB_FINISHED")
}

func TestCancelExistingKeepsJobWhenQueueFull(t *testing.T) {
	s := startServer(t, t.TempDir())
	s.createSleeper("first", 60)
	s.createSleeper("second", 60)
	expectStatus(t, s.do("PATCH", "/api/v1/settings", map[string]any{"queueLimit": 1}, nil), http.StatusOK)

	a := s.execute("first", nil)
	s.waitState(a.ID, "RUNNING")
	s.execute("second", nil)
	resp := s.do("POST", "/api/v1/projects/first/execute", map[string]any{"cancelExisting": true}, nil)
	expectStatus(t, resp, http.StatusTooManyRequests)
	expectProblemCode(t, resp, "QUEUE_FULL")
	if a = s.job(a.ID); a.State != "RUNNING" {
		t.Errorf("running job: state %s after a rejected cancelExisting, want RUNNING", a.State)
	}
}
