package main

import (
	"net/http"
	"testing"
)

func TestLambdaWaitReturnsRows(t *testing.T) {
	s := startServer(t, t.TempDir())

	var j job
	body := map[string]any{"parameters": map[string]any{"weather": "fog", "year": 2015}, "wait": "30s"}
	resp := s.do("POST", "/api/v1/projects/seattle-weather/lambda", body, &j)
	expectStatus(t, resp, http.StatusOK)
	if j.State != "COMPLETED" {
		t.Fatalf("state = %s, error %+v", j.State, j.Error)
	}
	want := seattleByHand(t, "fog", 2015)
	if j.Result == nil || len(j.Result.Rows) != len(want) {
		t.Fatalf("result = %+v, want %d rows", j.Result, len(want))
	}
	for _, row := range j.Result.Rows {
		month := int(row["month"].(float64))
		if got := int(row["days"].(float64)); got != want[month].days {
			t.Errorf("month %d: days = %d, want %d", month, got, want[month].days)
		}
	}
}

func TestLambdaRejectsBadParameters(t *testing.T) {
	s := startServer(t, t.TempDir())

	body := map[string]any{"parameters": map[string]any{"weather": "hail", "year": "soon", "colour": 1}}
	resp := s.do("POST", "/api/v1/projects/seattle-weather/lambda", body, nil)
	expectStatus(t, resp, http.StatusUnprocessableEntity)
	p := expectProblemCode(t, resp, "VALIDATION_FAILED")
	expectFields(t, p, "parameters.weather", "parameters.year", "parameters.colour")
}
