package main

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// screenshotsEnv names the directory where the browser tests write the
// README's screenshots; unset, they write none. `make screenshots` sets
// it to docs/.
const screenshotsEnv = "LAMBDAFLOW_SCREENSHOTS_DIR"

// browserWait bounds each wait for a condition on the page. The server
// runs with the race detector, so this is generous.
const browserWait = 60 * time.Second

// chromiumPath returns the Chromium binary. Without one the test is
// skipped, except under CI, where .ci/run installs Chromium and a
// missing browser must fail rather than skip.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium not found, but CI is set; .ci/run installs it with apt-get install -y chromium")
	}
	t.Skip("chromium not found; install it (apt-get install -y chromium) to run the browser tests")
	return ""
}

// browserPage is one headless Chromium tab on the admin page of srv.
type browserPage struct {
	t    *testing.T
	ctx  context.Context
	srv  *instance
	mu   sync.Mutex
	errs []string
}

// openAdmin starts Chromium with a fresh profile, loads /admin/ and the
// given fragment, and fails the test at its end if the page threw an
// exception or logged an error other than a failed request.
func openAdmin(t *testing.T, srv *instance, fragment string) *browserPage {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(cancel)
	ctx, cancelTimeout := context.WithTimeout(ctx, 4*time.Minute)
	t.Cleanup(cancelTimeout)

	p := &browserPage{t: t, ctx: ctx, srv: srv}
	go collectEvents(p, chromedp.Events(ctx, runtime.ExceptionThrown), func(ev runtime.EventExceptionThrown) string {
		return exceptionText(ev.ExceptionDetails)
	})
	go collectEvents(p, chromedp.Events(ctx, log.EntryAdded), func(ev log.EventEntryAdded) string {
		// Failed requests (401, 404, 409) are expected and shown by the
		// page itself; anything else logged as an error is a bug.
		if ev.Entry.Level != log.EntryLevelError || ev.Entry.Source == log.EntrySourceNetwork {
			return ""
		}
		return fmt.Sprintf("%s: %s (%s)", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL)
	})
	t.Cleanup(p.checkErrors)

	p.do(chromedp.Navigate(srv.base + "/admin/" + fragment))
	return p
}

func exceptionText(d *runtime.ExceptionDetails) string {
	if d == nil {
		return "exception"
	}
	text := d.Text
	if d.Exception != nil && d.Exception.Description != "" {
		text += " " + d.Exception.Description
	}
	return fmt.Sprintf("%s at %s:%d", text, d.URL, d.LineNumber+1)
}

// collectEvents records the text that describe returns for each event,
// until the page's context ends. An empty text is not recorded.
func collectEvents[E any](p *browserPage, events iter.Seq2[E, error], describe func(E) string) {
	for ev, err := range events {
		if err != nil {
			return
		}
		if text := describe(ev); text != "" {
			p.mu.Lock()
			p.errs = append(p.errs, text)
			p.mu.Unlock()
		}
	}
}

func (p *browserPage) checkErrors() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range p.errs {
		p.t.Errorf("browser reported: %s", e)
	}
}

// do runs actions, failing the test with the page's text on an error.
// A live refresh of the page can replace an element between the moment
// chromedp finds it and the moment it acts on it. The action then fails
// with "Could not find node with given id" without having done anything,
// so do runs it again, up to five times.
func (p *browserPage) do(actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	var err error
	for range 5 {
		err = chromedp.Do(p.ctx, actions...)
		if err == nil || !strings.Contains(err.Error(), "Could not find node with given id") {
			break
		}
	}
	if err != nil {
		p.t.Fatalf("browser: %v\npage text:\n%s", err, p.text())
	}
}

// waitFor polls the JavaScript expression until it is truthy.
func (p *browserPage) waitFor(what, expr string) {
	p.t.Helper()
	poll := chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(50*time.Millisecond),
		chromedp.WithPollingTimeout(browserWait))
	if _, err := chromedp.Run(p.ctx, poll); err != nil {
		p.t.Fatalf("waiting for %s: %v\npage text:\n%s", what, err, p.text())
	}
}

// waitText waits until the element that selector names contains want.
func (p *browserPage) waitText(selector, want string) {
	p.t.Helper()
	p.waitFor(fmt.Sprintf("%s to contain %q", selector, want),
		fmt.Sprintf(`(document.querySelector(%s)?.textContent || '').includes(%s)`, jsString(selector), jsString(want)))
}

// text returns the visible text of the page, for failure messages.
func (p *browserPage) text() string {
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
	if err != nil {
		return fmt.Sprintf("(page text unavailable: %v)", err)
	}
	return text
}

// evaluate returns the value of a JavaScript expression.
func evaluate[T any](p *browserPage, expr string) T {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		p.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// typeInto replaces the value of the input with text, typed as keys so
// that the page receives input events.
func (p *browserPage) typeInto(selector, text string) {
	p.t.Helper()
	clear := fmt.Sprintf(`document.querySelector(%s).value = ''`, jsString(selector))
	// Focus comes first: the page leaves a focused input's value alone
	// when a live refresh arrives between the clearing and the typing.
	p.do(chromedp.Focus(chromedp.CSS(selector)), chromedp.Evaluate[chromedp.Void](clear),
		chromedp.SendKeys(chromedp.CSS(selector), text))
}

// expectNoHorizontalScroll checks that the page is no wider than the
// window, for each view of the page.
func (p *browserPage) expectNoHorizontalScroll(views ...string) {
	p.t.Helper()
	for _, view := range views {
		p.do(chromedp.Navigate(p.srv.base + "/admin/#" + view))
		p.waitFor("view "+view, fmt.Sprintf(`!document.getElementById(%s).hidden`, jsString("view-"+view)))
		p.waitFor("view "+view+" to fill", `document.readyState === 'complete'`)
		widths := evaluate[[]int](p, `[document.documentElement.scrollWidth, document.documentElement.clientWidth]`)
		if widths[0] > widths[1] {
			p.t.Errorf("view %s at %d px is %d px wide, so it scrolls sideways", view, widths[1], widths[0])
		}
	}
}

// waitCharts waits until the resources view shows all four charts as
// images of the range whose title it names.
func (p *browserPage) waitCharts(rangeTitle string) {
	p.t.Helper()
	p.waitFor("four charts of "+rangeTitle, fmt.Sprintf(`(() => {
		const imgs = [...document.querySelectorAll('#charts img')];
		return imgs.length === 4 && imgs.every((img) => img.src.startsWith('blob:') &&
			img.complete && img.naturalWidth > 0 && img.alt.endsWith(%s));
	})()`, jsString(rangeTitle)))
	p.waitText("#charts-status", "Charts of "+rangeTitle)
}

// screenshot writes the page as a PNG into the screenshots directory,
// when one is set.
func (p *browserPage) screenshot(name string) {
	p.t.Helper()
	dir := os.Getenv(screenshotsEnv)
	if dir == "" {
		return
	}
	png, err := chromedp.Run(p.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		p.t.Fatal(err)
	}
}

func jsString(s string) string {
	data, _ := json.Marshal(s)
	return string(data)
}

func jobCard(list, id string) string {
	return fmt.Sprintf(`#%s article[data-job-id=%q]`, list, id)
}
