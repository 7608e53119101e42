package monitor

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/lambdaflow/lambdaflow/internal/httpapi"
)

// webFiles contains the admin page: plain HTML, CSS and JavaScript
// modules with no build step, served as they are.
//
//go:embed web
var webFiles embed.FS

// adminSecurityHeaders are set on every response of the admin page. The
// policy admits scripts, styles and connections from the service only,
// so no inline script runs, and chart images only from blob: URLs that
// the page creates from SVG it fetched itself.
var adminSecurityHeaders = map[string]string{
	"Content-Security-Policy": "default-src 'self'; img-src 'self' blob:; object-src 'none'; " +
		"base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
	"X-Content-Type-Options": "nosniff",
	"X-Frame-Options":        "DENY",
	"Referrer-Policy":        "no-referrer",
	// The files change with the binary and carry no modification time,
	// so the browser must check for a new version on every load.
	"Cache-Control": "no-cache",
}

// RegisterAdmin adds the admin page to r, the root router: GET /admin
// redirects to /admin/, and GET /admin/*filepath serves the embedded
// files, index.html for /admin/ itself. gin cannot register /admin/
// beside the catch-all, which matches it too. The files hold no data,
// because the page prompts for an API token and sends it with every API
// call, so the routes need no token.
func RegisterAdmin(r gin.IRoutes) {
	root, err := fs.Sub(webFiles, "web")
	if err != nil {
		panic(err) // the embed directive guarantees the directory
	}
	files := http.FileServerFS(root)
	r.GET("/admin", func(c *gin.Context) {
		c.Redirect(http.StatusMovedPermanently, "/admin/")
	})
	r.GET("/admin/*filepath", httpapi.Handle(func(c *gin.Context) error {
		return serveAdminFile(c, root, files)
	}))
}

// serveAdminFile writes the embedded file the request names, or a 404
// problem document when there is none.
func serveAdminFile(c *gin.Context, root fs.FS, files http.Handler) error {
	name := strings.TrimPrefix(path.Clean(c.Param("filepath")), "/")
	if name == "" {
		name = "index.html"
	}
	info, err := fs.Stat(root, name)
	if err != nil || info.IsDir() {
		return httpapi.NotFound(httpapi.CodeNotFound, "the admin page has no file "+c.Param("filepath"))
	}

	for key, value := range adminSecurityHeaders {
		c.Header(key, value)
	}
	req := c.Request.Clone(c.Request.Context())
	req.URL.Path = "/" + name
	if name == "index.html" {
		// http.FileServer redirects /index.html to ./, so the request
		// names the directory, for which it serves index.html.
		req.URL.Path = "/"
	}
	files.ServeHTTP(c.Writer, req)
	return nil
}
