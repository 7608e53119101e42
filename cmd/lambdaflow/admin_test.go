package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/lambdaflow/lambdaflow/internal/auth"
)

func TestAdminPageStopsJobAndSetsSlots(t *testing.T) {
	chromiumPath(t)
	srv := startServer(t, t.TempDir(), "--monitor-interval", "100ms")
	finished := srv.execute("seattle-weather", nil)
	srv.waitFinal(finished.ID)
	srv.createSleeper("sleepy", 600)
	running := srv.execute("sleepy", nil)
	srv.waitState(running.ID, "RUNNING")
	blocked := srv.execute("sleepy", nil)
	srv.waitState(blocked.ID, "BLOCKED")

	p := openAdmin(t, srv, "#queue")
	p.waitText(jobCard("running", running.ID), "RUNNING")
	p.waitText(jobCard("running", running.ID)+` tr[data-block="wait"]`, "RUNNING")
	p.waitText(jobCard("waiting", blocked.ID)+` .wait[data-reason="PROJECT_LOCK"]`, running.ID[len(running.ID)-8:])
	p.waitText(jobCard("recent", finished.ID), "COMPLETED")

	// The Nodes section lists this server as the one node, "local"
	// outside a cluster, running the running job, and a job card names
	// a node only in a cluster.
	var limits struct {
		MaxConcurrentJobs int `json:"maxConcurrentJobs"`
	}
	srv.do("GET", "/api/v1/settings", nil, &limits)
	local := fmt.Sprintf(`#nodes tr[data-node=%q]`, expectedNodeName())
	p.waitText(local, "alive")
	p.waitText(local+" td.slots", fmt.Sprintf("1 of 1 used, cap %d", limits.MaxConcurrentJobs))
	p.waitText(local+" td.running", running.ID[len(running.ID)-8:])
	p.waitText(local+" td.memory", " of ")
	// The first sample has no CPU reading, so this waits for a refresh
	// after the second one.
	p.waitText(local+" td.cpu", " %")
	if n := evaluate[int](p, `document.querySelectorAll('#nodes tbody tr').length`); n != 1 {
		t.Errorf("the Nodes section lists %d nodes, want 1", n)
	}
	meta := evaluate[string](p, fmt.Sprintf(`document.querySelector(%s).textContent`, jsString(jobCard("running", running.ID)+" .meta")))
	if named := strings.Contains(meta, "node"); named != (expectedJobNode() != nil) {
		t.Errorf("running job card %q names a node: %v, want %v", meta, named, expectedJobNode() != nil)
	}

	// By keyboard: Enter on the Stop button opens the dialog, Escape
	// closes it and stops nothing, and focus returns to the button.
	stop := jobCard("running", running.ID) + " button.stop"
	p.do(chromedp.Focus(chromedp.CSS(stop)), chromedp.KeyEvent(kb.Enter))
	p.waitFor("the stop dialog", `document.getElementById('stop-dialog').open`)
	p.do(chromedp.KeyEvent(kb.Escape))
	p.waitFor("the stop dialog to close", `!document.getElementById('stop-dialog').open`)
	p.waitFor("focus back on the Stop button", fmt.Sprintf(`document.activeElement === document.querySelector(%s)`, jsString(stop)))
	p.do(chromedp.Click(chromedp.CSS(stop)))
	p.waitFor("the stop dialog", `document.getElementById('stop-dialog').open`)
	p.do(chromedp.Click(chromedp.CSS(`#stop-dialog button[value="cancel"]`)))
	p.waitFor("the stop dialog to close", `!document.getElementById('stop-dialog').open`)
	if j := srv.job(running.ID); j.State != "RUNNING" {
		t.Fatalf("after Escape and Keep it, job state = %s, want RUNNING", j.State)
	}

	p.do(chromedp.Click(chromedp.CSS(stop)))
	p.waitFor("the stop dialog", `document.getElementById('stop-dialog').open`)
	p.do(chromedp.SendKeys(chromedp.CSS("#stop-reason"), "not needed"))
	p.do(chromedp.Click(chromedp.CSS("#stop-confirm")))
	p.waitText(jobCard("recent", running.ID), "CANCELLED")
	p.waitText(jobCard("recent", running.ID), "not needed")
	var stopped struct {
		State string `json:"state"`
		Stop  struct {
			Reason string `json:"reason"`
		} `json:"stop"`
	}
	srv.do("GET", "/api/v1/jobs/"+running.ID, nil, &stopped)
	if stopped.State != "CANCELLED" || stopped.Stop.Reason != "not needed" {
		t.Errorf("stopped job: state %s, stop reason %q; want CANCELLED, \"not needed\"", stopped.State, stopped.Stop.Reason)
	}
	p.waitText(jobCard("running", blocked.ID), "RUNNING")

	var settings struct {
		ConcurrentJobs          int `json:"concurrentJobs"`
		RequestedConcurrentJobs int `json:"requestedConcurrentJobs"`
		MaxConcurrentJobs       int `json:"maxConcurrentJobs"`
	}
	srv.do("GET", "/api/v1/settings", nil, &settings)
	maxJobs := settings.MaxConcurrentJobs
	p.waitText("#slots-now", fmt.Sprintf("Cap: %d", maxJobs))
	p.typeInto("#slots-input", fmt.Sprint(maxJobs+1))
	p.waitText("#slots-effect", fmt.Sprintf("%d is above the cap of %d, so %d job", maxJobs+1, maxJobs, maxJobs))
	p.do(chromedp.Click(chromedp.CSS(`#slots-form button[type="submit"]`)))
	p.waitText("#slots-effect", "Saved.")
	p.waitText("#slots-now", fmt.Sprintf("(requested %d, capped)", maxJobs+1))
	srv.do("GET", "/api/v1/settings", nil, &settings)
	if settings.RequestedConcurrentJobs != maxJobs+1 || settings.ConcurrentJobs != maxJobs {
		t.Errorf("settings after save: requested %d, in force %d; want %d, %d",
			settings.RequestedConcurrentJobs, settings.ConcurrentJobs, maxJobs+1, maxJobs)
	}
	p.typeInto("#slots-input", "1")
	p.waitText("#slots-effect", fmt.Sprintf("1 job may run at once; requests above %d are capped.", maxJobs))
	p.do(chromedp.Click(chromedp.CSS(`#slots-form button[type="submit"]`)))
	p.waitText("#slots-now", "In force: 1 job at once.")

	// The resources view shows the latest sample when it loads and then
	// reloads once a minute, so a sample under the new limit must exist
	// before the view opens.
	srv.waitSamples(time.Now(), "a sample with one slot", func(b []bucket) bool {
		return len(b) > 0 && b[len(b)-1].ConcurrentJobs != nil && b[len(b)-1].ConcurrentJobs.Max == 1
	})
	p.do(chromedp.Click(chromedp.CSS(`nav a[href="#resources"]`)))
	p.waitCharts("the last hour")
	p.waitText("#resources-now", "CPU, machine")
	p.waitText("#resources-now", "running of 1 slot")
	p.do(chromedp.Click(chromedp.CSS(`button[data-range="24h"]`)))
	p.waitCharts("the last day")

	p.do(chromedp.EmulateViewport(375, 800))
	p.expectNoHorizontalScroll("queue", "resources", "projects")
}

func TestAdminPageInvokesProject(t *testing.T) {
	chromiumPath(t)
	srv := startServer(t, t.TempDir())
	p := openAdmin(t, srv, "#projects")
	form := `form[data-project="seattle-weather"]`
	year := "#param-seattle-weather-year"
	p.waitFor("the seattle-weather form", fmt.Sprintf(`document.querySelector(%s) !== null`, jsString(form)))
	if got := evaluate[string](p, `document.querySelector('`+year+`').value`); got != "2014" {
		t.Errorf("year field = %q, want the current value 2014", got)
	}
	if got := evaluate[string](p, `document.querySelector('#param-seattle-weather-weather').value`); got != "rain" {
		t.Errorf("weather field = %q, want the default rain", got)
	}

	// The browser checks the declared range before anything is sent.
	p.typeInto(year, "2011")
	p.do(chromedp.Click(chromedp.CSS(form + ` button[type="submit"]`)))
	p.waitFor("the browser's range error", `document.querySelector('`+year+`-error').textContent !== ''`)
	if got := evaluate[string](p, `document.querySelector('`+year+`').getAttribute('aria-invalid')`); got != "true" {
		t.Errorf("year aria-invalid = %q, want true", got)
	}

	// Without the max attribute the server rejects the year, and its
	// message appears next to the field.
	p.do(chromedp.RemoveAttribute(chromedp.CSS(year), "max"))
	p.typeInto(year, "2020")
	p.do(chromedp.Click(chromedp.CSS(form + ` button[type="submit"]`)))
	p.waitText(year+"-error", "2015")

	p.typeInto(year, "2013")
	p.do(chromedp.SetValue(chromedp.CSS("#param-seattle-weather-weather"), "sun"))
	p.do(chromedp.Click(chromedp.CSS(form + ` button[type="submit"]`)))
	result := `section[data-project="seattle-weather"] .run-result`
	p.waitFor("the result table", fmt.Sprintf(`document.querySelector(%s) !== null`, jsString(result+" table.result")))
	if got := evaluate[string](p, `document.querySelector('`+year+`-error').textContent`); got != "" {
		t.Errorf("year error after a valid run = %q, want none", got)
	}
	jobID := evaluate[string](p, fmt.Sprintf(`document.querySelector(%s).dataset.job`, jsString(result+" .run-state")))
	j := srv.job(jobID)
	if j.State != "COMPLETED" || j.Result == nil || len(j.Result.Rows) == 0 {
		t.Fatalf("job %s: state %s, result %+v; want COMPLETED with rows", jobID, j.State, j.Result)
	}
	var definition struct {
		Parameters map[string]any `json:"parameters"`
	}
	srv.do("GET", "/api/v1/jobs/"+jobID+"/definition", nil, &definition)
	if definition.Parameters["weather"] != "sun" || definition.Parameters["year"] != float64(2013) {
		t.Errorf("job parameters = %v, want weather sun and year 2013", definition.Parameters)
	}
	rows := evaluate[int](p, fmt.Sprintf(`document.querySelectorAll(%s).length`, jsString(result+" table.result tbody tr")))
	if rows != len(j.Result.Rows) {
		t.Errorf("result table has %d rows, want %d", rows, len(j.Result.Rows))
	}
	header := evaluate[[]string](p, fmt.Sprintf(`[...document.querySelectorAll(%s)].map((th) => th.textContent)`,
		jsString(result+" table.result thead th")))
	cells := evaluate[[]string](p, fmt.Sprintf(`[...document.querySelectorAll(%s)].map((td) => td.textContent)`,
		jsString(result+" table.result tbody tr:first-child td")))
	if len(header) != len(cells) {
		t.Fatalf("result table: %d headers, %d cells in the first row", len(header), len(cells))
	}
	for i, name := range header {
		if name != "month" && name != "days" {
			continue
		}
		if want := fmt.Sprint(j.Result.Rows[0][name]); cells[i] != want {
			t.Errorf("result table, first row, %s = %q, want %q", name, cells[i], want)
		}
	}

	p.do(chromedp.EmulateViewport(375, 800))
	p.expectNoHorizontalScroll("projects")
}

func TestAdminPageAsksForToken(t *testing.T) {
	chromiumPath(t)
	srv := startServer(t, t.TempDir(), "--tokens-file", writeTokensFile(t))
	p := openAdmin(t, srv, "#queue")
	p.waitFor("the token form", `!document.getElementById('auth').hidden`)
	p.waitText("#auth-message", "needs an API token")
	p.waitText("#queue-error", "missing bearer token")

	p.typeInto("#token-input", "not-a-token")
	p.do(chromedp.Click(chromedp.CSS(`#token-form button[type="submit"]`)))
	p.waitText("#auth-message", "rejected the token")

	p.typeInto("#token-input", roleTokens[auth.Viewer])
	p.do(chromedp.Click(chromedp.CSS(`#token-form button[type="submit"]`)))
	p.waitText("#slots-now", "In force: 1 job at once.")
	p.waitFor("the token form to close", `document.getElementById('auth').hidden`)
	if got := evaluate[string](p, `sessionStorage.getItem('lambdaflow.token')`); got != roleTokens[auth.Viewer] {
		t.Errorf("sessionStorage token = %q, want the viewer token", got)
	}

	// A viewer may read but not change the slot limit.
	p.typeInto("#slots-input", "2")
	p.do(chromedp.Click(chromedp.CSS(`#slots-form button[type="submit"]`)))
	p.waitText("#slots-error", "needs the role admin")

	p.do(chromedp.Click(chromedp.CSS("#token-toggle")))
	p.typeInto("#token-input", roleTokens[auth.Admin])
	p.do(chromedp.Click(chromedp.CSS(`#token-form button[type="submit"]`)))
	p.typeInto("#slots-input", "2")
	p.do(chromedp.Click(chromedp.CSS(`#slots-form button[type="submit"]`)))
	p.waitText("#slots-effect", "Saved.")
}

// TestAdminScreenshots writes docs/admin-queue.png and
// docs/admin-resources.png for the README when LAMBDAFLOW_SCREENSHOTS_DIR
// is set, as `make screenshots` does. It lets CPU-heavy jobs run for
// two minutes first, so that the charts have a history to show.
func TestAdminScreenshots(t *testing.T) {
	if os.Getenv(screenshotsEnv) == "" {
		t.Skip(screenshotsEnv + " is not set")
	}
	chromiumPath(t)
	srv := startServer(t, t.TempDir(), "--monitor-interval", "250ms", "--monitor-recent-jobs", "3")
	srv.createCruncher("crunch", 60)
	srv.createSleeper("sleepy", 600)
	until := time.Now().Add(2 * time.Minute)
	for time.Now().Before(until) {
		srv.waitFinal(srv.execute("crunch", nil).ID)
		srv.waitFinal(srv.execute("seattle-weather", nil).ID)
	}
	stopped := srv.execute("sleepy", nil)
	srv.waitState(stopped.ID, "RUNNING")
	srv.do("POST", "/api/v1/jobs/"+stopped.ID+"/stop", map[string]any{"reason": "wrong parameters"}, nil)
	srv.waitFinal(stopped.ID)

	srv.do("PATCH", "/api/v1/settings", map[string]any{"concurrentJobs": 2}, nil)
	first := srv.execute("sleepy", nil)
	srv.waitState(first.ID, "RUNNING")
	lambda := srv.do("POST", "/api/v1/projects/sleepy/lambda", map[string]any{}, nil)
	expectStatus(t, lambda, http.StatusAccepted)
	blocked := srv.execute("sleepy", nil)
	queued := srv.execute("crunch", nil)
	srv.waitState(blocked.ID, "BLOCKED")

	p := openAdmin(t, srv, "#queue")
	p.waitText(jobCard("waiting", blocked.ID), "BLOCKED")
	p.waitText(jobCard("waiting", queued.ID), "QUEUED")
	p.waitText("#live", "Live updates on")
	p.screenshot("admin-queue.png")

	p.do(chromedp.Click(chromedp.CSS(`nav a[href="#resources"]`)))
	p.waitText("#resources-now", "CPU, machine")
	p.do(chromedp.Click(chromedp.CSS(`button[data-range="5m"]`)))
	p.waitCharts("the last 5 minutes")
	p.screenshot("admin-resources.png")
}

// TestAdminFilesArePublicAndSafe checks the static responses: public even
// with tokens on, with security headers, and free of inline scripts and
// of anything loaded from another host.
func TestAdminFilesArePublicAndSafe(t *testing.T) {
	h := startInProcess(t, "--tokens-file", writeTokensFile(t))

	rec := serveRequest(h, "GET", "/admin", "")
	if rec.Code != http.StatusMovedPermanently || rec.Header().Get("Location") != "/admin/" {
		t.Errorf("GET /admin: status %d, Location %q; want 301 to /admin/", rec.Code, rec.Header().Get("Location"))
	}
	if rec := serveRequest(h, "GET", "/admin/no-such-file.js", ""); rec.Code != http.StatusNotFound {
		t.Errorf("GET /admin/no-such-file.js: status %d, want 404", rec.Code)
	}

	index := serveRequest(h, "GET", "/admin/", "")
	if index.Code != http.StatusOK || !strings.HasPrefix(index.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("GET /admin/: status %d, Content-Type %q; want 200 text/html", index.Code, index.Header().Get("Content-Type"))
	}
	html := index.Body.String()
	for _, tag := range regexp.MustCompile(`<script[^>]*>`).FindAllString(html, -1) {
		if !strings.Contains(tag, " src=") {
			t.Errorf("index.html has an inline script: %s", tag)
		}
	}
	if m := regexp.MustCompile(`\s(on[a-z]+|style)=`).FindString(html); m != "" {
		t.Errorf("index.html has an inline handler or style attribute: %q", m)
	}

	refs := regexp.MustCompile(`(?:src|href)="([^"#]+)"`).FindAllStringSubmatch(html, -1)
	files := []string{"index.html"}
	for _, ref := range refs {
		files = append(files, ref[1])
	}
	files = append(files, "js/api.js", "js/dom.js", "js/events.js", "js/queue.js", "js/slots.js", "js/charts.js", "js/projects.js", "js/nodes.js")
	for _, name := range files {
		rec := serveRequest(h, "GET", "/admin/"+name, "")
		if rec.Code != http.StatusOK {
			t.Errorf("GET /admin/%s: status %d, want 200", name, rec.Code)
			continue
		}
		expectHeader(t, rec.Header(), name, "Content-Security-Policy", "default-src 'self'")
		expectHeader(t, rec.Header(), name, "X-Content-Type-Options", "nosniff")
		body, _ := io.ReadAll(rec.Body)
		if m := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/`).Find(body); m != nil {
			t.Errorf("/admin/%s refers to another host: %s", name, m)
		}
	}
	for name, want := range map[string]string{"style.css": "text/css", "js/app.js": "javascript"} {
		rec := serveRequest(h, "GET", "/admin/"+name, "")
		if got := rec.Header().Get("Content-Type"); !strings.Contains(got, want) {
			t.Errorf("GET /admin/%s: Content-Type %q, want %s", name, got, want)
		}
	}
}

func expectHeader(t *testing.T, h http.Header, file, key, want string) {
	t.Helper()
	if got := h.Get(key); !strings.Contains(got, want) {
		t.Errorf("/admin/%s: %s = %q, want it to contain %q", file, key, got, want)
	}
}
