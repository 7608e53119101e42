package httpapi

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
)

// decodeTarget is a request body with an embedded struct, as the API's
// project requests have.
type decodeTarget struct {
	Inner
	Count int `json:"count"`
}

// Inner is embedded in decodeTarget.
type Inner struct {
	Name string `json:"name"`
}

func serve(t *testing.T, maxBytes int64) *httptest.Server {
	t.Helper()
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(Middleware(slog.New(slog.DiscardHandler)))
	r.POST("/", Handle(func(c *gin.Context) error {
		var v decodeTarget
		if err := DecodeJSON(c, &v, maxBytes, false); err != nil {
			return err
		}
		c.JSON(http.StatusOK, v)
		return nil
	}))
	r.GET("/panic", Handle(func(c *gin.Context) error { panic("boom") }))
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return srv
}

func post(t *testing.T, srv *httptest.Server, contentType, body string) (*http.Response, Problem) {
	t.Helper()
	resp, err := http.Post(srv.URL+"/", contentType, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p Problem
	json.NewDecoder(resp.Body).Decode(&p)
	return resp, p
}

func TestDecodeJSONProblems(t *testing.T) {
	srv := serve(t, 64)
	cases := []struct {
		name, contentType, body string
		status                  int
		code, field             string
	}{
		{"valid", "application/json", `{"name": "a", "count": 1}`, 200, "", ""},
		{"empty", "application/json", ``, 400, CodeBadRequest, ""},
		{"syntax", "application/json", `{"name": `, 400, CodeBadRequest, ""},
		{"wrong type in embedded struct", "application/json", `{"name": 5}`, 400, CodeBadRequest, "name"},
		{"wrong type", "application/json", `{"count": "x"}`, 400, CodeBadRequest, "count"},
		{"unknown field", "application/json", `{"colour": 1}`, 400, CodeBadRequest, "colour"},
		{"two values", "application/json", `{} {}`, 400, CodeBadRequest, ""},
		{"too large", "application/json", `{"name": "` + strings.Repeat("x", 100) + `"}`, 413, CodePayloadTooLarge, ""},
		{"wrong media type", "text/plain", `{}`, 415, CodeUnsupportedMediaType, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, p := post(t, srv, tc.contentType, tc.body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if p.Code != tc.code {
				t.Errorf("code %q, want %q", p.Code, tc.code)
			}
			if tc.field != "" && (len(p.Errors) != 1 || p.Errors[0].Field != tc.field) {
				t.Errorf("errors %+v, want one naming %s", p.Errors, tc.field)
			}
			if tc.status >= 400 && p.RequestID == "" {
				t.Error("problem has no request id")
			}
		})
	}
}

func TestHandlerPanicIsProblem(t *testing.T) {
	srv := serve(t, 0)
	resp, err := http.Get(srv.URL + "/panic")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != problemMediaType {
		t.Errorf("Content-Type %q, want %s", ct, problemMediaType)
	}
}

func TestValidationCapsErrors(t *testing.T) {
	errs := make([]FieldError, MaxFieldErrors+50)
	p := Validation("bad", errs)
	if len(p.Errors) != MaxFieldErrors+1 {
		t.Fatalf("problem lists %d errors, want %d", len(p.Errors), MaxFieldErrors+1)
	}
	if !strings.Contains(p.Errors[MaxFieldErrors].Message, "50 more") {
		t.Errorf("last entry %q does not count the rest", p.Errors[MaxFieldErrors].Message)
	}
}
