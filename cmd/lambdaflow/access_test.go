package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/spf13/pflag"

	"github.com/lambdaflow/lambdaflow/internal/auth"
)

// Tokens of the tokens file the access tests write, one per role.
var roleTokens = map[auth.Role]string{
	auth.Viewer: "viewer-token-for-tests",
	auth.Runner: "runner-token-for-tests",
	auth.Admin:  "admin-token-for-tests",
}

// writeTokensFile writes a tokens file with roleTokens and returns its path.
func writeTokensFile(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("# tokens for tests\n\n")
	for role, token := range roleTokens {
		b.WriteString(role.String() + " " + token + "\n")
	}
	path := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// startInProcess starts the service in this process as serve does,
// from command-line args, and returns its HTTP handler. The listener is
// closed at once, because the tests call the handler directly.
func startInProcess(t *testing.T, args ...string) http.Handler {
	t.Helper()
	cfg := &serveConfig{}
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	cfg.bindFlags(fs)
	all := append([]string{"--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--log-level", "error"}, args...)
	if err := fs.Parse(all); err != nil {
		t.Fatal(err)
	}
	if err := cfg.finish(); err != nil {
		t.Fatal(err)
	}
	s := &server{cfg: cfg, logger: cfg.logger()}
	ln, err := s.start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	s.ready.Store(true)
	t.Cleanup(func() {
		if err := s.shutdown(); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return s.http.Handler
}

// routePath fills a gin route's parameters with names of things that do
// not exist, so that an admitted request changes nothing.
func routePath(path string) string {
	replacer := strings.NewReplacer(":project", "no-such-project", ":instance", "no-such-instance",
		":job", "no-such-job", ":name", "no-such-parameter", "*file", "no-such-file.csv",
		":chart", "no-such-chart.svg")
	return replacer.Replace(path)
}

// streamingPaths never end a response on their own. Their requests get
// a context that is already cancelled, so that the stream ends after its
// first write.
var streamingPaths = map[string]bool{"/api/v1/events": true}

func serveRequest(h http.Handler, method, path, token string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, nil)
	if streamingPaths[path] {
		ctx, cancel := context.WithCancel(req.Context())
		cancel()
		req = req.WithContext(ctx)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// expectDenied checks the status, the WWW-Authenticate header of a 401
// and the error code in the body's shape for the route.
func expectDenied(t *testing.T, rec *httptest.ResponseRecorder, route string, status int, code string) {
	t.Helper()
	if rec.Code != status {
		t.Errorf("%s: status %d, want %d; body %s", route, rec.Code, status, rec.Body)
		return
	}
	if status == http.StatusUnauthorized && !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("%s: WWW-Authenticate = %q, want a Bearer challenge", route, rec.Header().Get("WWW-Authenticate"))
	}
	var body struct {
		Code      string `json:"code"`
		ErrorType string `json:"errorType"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Errorf("%s: decoding body %q: %v", route, rec.Body, err)
		return
	}
	got := body.Code
	if isWorkflowRoute(strings.SplitN(route, " ", 2)[1]) {
		got = body.ErrorType
	}
	if got != code {
		t.Errorf("%s: error code %q, want %q; body %s", route, got, code, rec.Body)
	}
}

func TestEveryRouteChecksAccess(t *testing.T) {
	h := startInProcess(t, "--tokens-file", writeTokensFile(t))
	routes := h.(interface{ Routes() gin.RoutesInfo }).Routes()
	if len(routes) == 0 {
		t.Fatal("router lists no routes")
	}
	for _, r := range routes {
		key := auth.RouteKey(r.Method, r.Path)
		need, listed := routeRoles[key]
		if !listed {
			t.Errorf("%s has no entry in routeRoles", key)
			continue
		}
		switch {
		case r.Method == http.MethodGet && need != auth.Viewer && need != auth.Public:
			t.Errorf("%s needs %s; every read route should need viewer", key, need)
		case r.Method != http.MethodGet && need < auth.Runner:
			t.Errorf("%s needs %s; every route that changes state should need runner or admin", key, need)
		}
		path := routePath(r.Path)
		if need == auth.Public {
			if rec := serveRequest(h, r.Method, path, ""); rec.Code == http.StatusUnauthorized || rec.Code == http.StatusForbidden {
				t.Errorf("%s: public route answered %d without a token", key, rec.Code)
			}
			continue
		}
		expectDenied(t, serveRequest(h, r.Method, path, ""), key, http.StatusUnauthorized, "UNAUTHORIZED")
		expectDenied(t, serveRequest(h, r.Method, path, "wrong-token"), key, http.StatusUnauthorized, "UNAUTHORIZED")
		if need > auth.Viewer {
			expectDenied(t, serveRequest(h, r.Method, path, roleTokens[need-1]), key, http.StatusForbidden, "FORBIDDEN")
		}
		for role := need; role <= auth.Admin; role++ {
			rec := serveRequest(h, r.Method, path, roleTokens[role])
			if rec.Code == http.StatusUnauthorized || rec.Code == http.StatusForbidden {
				t.Errorf("%s: role %s got %d; body %s", key, role, rec.Code, rec.Body)
			}
		}
	}
	for key := range routeRoles {
		found := false
		for _, r := range routes {
			found = found || auth.RouteKey(r.Method, r.Path) == key
		}
		if !found {
			t.Errorf("routeRoles lists %s, which is not a route", key)
		}
	}
}

func TestUnknownPathNeedsToken(t *testing.T) {
	h := startInProcess(t, "--tokens-file", writeTokensFile(t))
	expectDenied(t, serveRequest(h, "GET", "/api/v1/no-such-route", ""), "GET /api/v1/no-such-route", http.StatusUnauthorized, "UNAUTHORIZED")
	if rec := serveRequest(h, "GET", "/api/v1/no-such-route", roleTokens[auth.Viewer]); rec.Code != http.StatusNotFound {
		t.Errorf("unknown path with a token: status %d, want 404", rec.Code)
	}
}

func TestNoTokensLeavesRoutesOpen(t *testing.T) {
	h := startInProcess(t)
	if rec := serveRequest(h, "GET", "/api/v1/settings", ""); rec.Code != http.StatusOK {
		t.Errorf("GET /api/v1/settings without tokens: status %d, want 200", rec.Code)
	}
}

func TestCheckListenAddr(t *testing.T) {
	cases := []struct {
		addr         string
		tokens, open bool
		ok           bool
	}{
		{"127.0.0.1:8080", false, false, true},
		{"127.1.2.3:8080", false, false, true},
		{"[::1]:8080", false, false, true},
		{"localhost:8080", false, false, true},
		{"LocalHost:8080", false, false, true},
		{":8080", false, false, false},
		{"0.0.0.0:8080", false, false, false},
		{"[::]:8080", false, false, false},
		{"192.0.2.10:8080", false, false, false},
		{"example.com:8080", false, false, false},
		{"0.0.0.0:8080", true, false, true},
		{"0.0.0.0:8080", false, true, true},
		{"no-port", false, false, false},
	}
	for _, tc := range cases {
		err := checkListenAddr(tc.addr, tc.tokens, tc.open)
		if (err == nil) != tc.ok {
			t.Errorf("checkListenAddr(%q, tokens %v, insecure %v) = %v, want ok %v", tc.addr, tc.tokens, tc.open, err, tc.ok)
		}
	}
}

func TestTokensGuardRealServer(t *testing.T) {
	s := startServer(t, t.TempDir(), "--tokens-file", writeTokensFile(t))

	resp := s.do("GET", "/api/v1/projects", nil, nil)
	expectStatus(t, resp, http.StatusUnauthorized)
	if got := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
		t.Errorf("WWW-Authenticate = %q, want a Bearer challenge", got)
	}
	expectProblemCode(t, resp, "UNAUTHORIZED")
	expectStatus(t, s.do("GET", "/healthz", nil, nil), http.StatusOK)

	s.token = roleTokens[auth.Viewer]
	expectStatus(t, s.do("GET", "/api/v1/projects", nil, nil), http.StatusOK)
	resp = s.do("POST", "/api/v1/projects/seattle-weather/execute", nil, nil)
	expectStatus(t, resp, http.StatusForbidden)
	expectProblemCode(t, resp, "FORBIDDEN")
	var workflowErr struct {
		ErrorType string `json:"errorType"`
	}
	expectStatus(t, s.do("POST", "/seattle-weather/w/execute", nil, &workflowErr), http.StatusForbidden)
	if workflowErr.ErrorType != "FORBIDDEN" {
		t.Errorf("Omniscope errorType = %q, want FORBIDDEN", workflowErr.ErrorType)
	}

	s.token = roleTokens[auth.Runner]
	expectStatus(t, s.do("POST", "/api/v1/projects", map[string]any{"name": "x"}, nil), http.StatusForbidden)
	s.token = roleTokens[auth.Admin]
	s.createSleeper("sleepy", 3600)

	s.token = roleTokens[auth.Runner]
	a := s.execute("sleepy", nil)
	var stopped struct {
		Stop struct {
			By string `json:"by"`
		} `json:"stop"`
	}
	body := map[string]any{"reason": "test", "by": "someone else"}
	expectStatus(t, s.do("POST", "/api/v1/jobs/"+a.ID+"/stop", body, &stopped), http.StatusOK)
	digest := sha256.Sum256([]byte(roleTokens[auth.Runner]))
	if want := "runner:" + hex.EncodeToString(digest[:4]); stopped.Stop.By != want {
		t.Errorf("stop by = %q, want %q", stopped.Stop.By, want)
	}
	s.waitState(a.ID, "CANCELLED")

	s.terminate()
	for role, token := range roleTokens {
		if strings.Contains(s.logText(), token) {
			t.Errorf("the log contains the %s token", role)
		}
	}
}

func TestServeRejectsOpenNonLoopback(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "serve", "--addr", "0.0.0.0:0", "--data-dir", t.TempDir())
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("serve on 0.0.0.0 without tokens exited 0; output:\n%s", out)
	}
	for _, want := range []string{"no API tokens are configured", "--tokens-file", "--insecure"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output does not mention %q:\n%s", want, out)
		}
	}

	s := startServer(t, t.TempDir(), "--addr", "0.0.0.0:0", "--insecure")
	// The server listens on every interface; the test talks to it over
	// loopback only.
	_, port, err := net.SplitHostPort(strings.TrimPrefix(s.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	s.base = "http://127.0.0.1:" + port
	expectStatus(t, s.do("GET", "/api/v1/settings", nil, nil), http.StatusOK)
	if !strings.Contains(s.logText(), "serving without API tokens") {
		t.Errorf("log does not warn about serving without tokens:\n%s", s.logText())
	}
	s.terminate()
}
