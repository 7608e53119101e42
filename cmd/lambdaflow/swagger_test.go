package main

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/lambdaflow/lambdaflow/internal/auth"
)

// browserPath returns the Chromium the browser tests drive.
func browserPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	t.Fatal("no Chromium found; .ci/run installs the chromium package")
	return ""
}

// TestSwaggerUITriesOperationWithToken opens Swagger UI in Chromium on a
// server with tokens, checks that it lists every operation of the
// document, authorizes with a token and runs GET /api/v1/settings from
// the page.
func TestSwaggerUITriesOperationWithToken(t *testing.T) {
	s := startServer(t, t.TempDir(), "--tokens-file", writeTokensFile(t))
	doc, _ := loadSpec(t)
	operations := 0
	for _, path := range doc.Paths.InMatchingOrder() {
		operations += len(doc.Paths.Value(path).Operations())
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browserPath(t)), chromedp.NoSandbox)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(allocCtx)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	defer cancelTimeout()

	settings := "#operations-settings-getSettings"
	err := chromedp.Do(ctx,
		chromedp.Navigate(s.base+"/swagger/index.html"),
		chromedp.WaitVisible(chromedp.CSS(settings)),
	)
	if err != nil {
		t.Fatalf("loading Swagger UI: %v", err)
	}
	listed, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('.opblock').length`))
	if err != nil {
		t.Fatal(err)
	}
	if listed != operations {
		t.Errorf("Swagger UI lists %d operations, the document has %d", listed, operations)
	}

	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`button.authorize`)),
		chromedp.SendKeys(chromedp.CSS(`.auth-container input`), roleTokens[auth.Viewer]),
		chromedp.Click(chromedp.CSS(`.auth-btn-wrapper button.authorize`)),
		chromedp.Click(chromedp.CSS(`button.btn-done`)),
		chromedp.Click(chromedp.CSS(settings+` .opblock-summary-control`)),
		chromedp.Click(chromedp.CSS(settings+` button.try-out__btn`)),
		chromedp.Click(chromedp.CSS(settings+` button.execute`)),
		chromedp.WaitVisible(chromedp.CSS(settings+` .live-responses-table tbody .response-col_status`)),
	)
	if err != nil {
		t.Fatalf("trying GET /api/v1/settings in Swagger UI: %v", err)
	}
	status, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(settings+` .live-responses-table tbody .response-col_status`)))
	if err != nil {
		t.Fatal(err)
	}
	body, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(settings+` .live-responses-table .microlight`)))
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(status) != "200" {
		t.Errorf("Swagger UI got status %q for GET /api/v1/settings with a viewer token", status)
	}
	if !strings.Contains(body, "maxConcurrentJobs") {
		t.Errorf("Swagger UI shows the body %q, want the settings", body)
	}
}
