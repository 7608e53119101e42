package main

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/lambdaflow/lambdaflow/internal/httpapi"
	"github.com/lambdaflow/lambdaflow/lambda"
)

// HTTP server limits that have no flag.
const (
	// maxHeaderBytes bounds the request line and headers. Past it
	// net/http returns 431 Request Header Fields Too Large in plain text
	// before any handler runs.
	maxHeaderBytes = 64 << 10
	// idleTimeout closes a keep-alive connection that sent no request
	// for this long.
	idleTimeout = 2 * time.Minute
)

// bodyLimitMiddleware bounds request bodies to maxBody bytes, and
// multipart bodies to maxUpload bytes, with a 413 in the route's error
// shape.
func bodyLimitMiddleware(maxBody, maxUpload int64) gin.HandlerFunc {
	return httpapi.LimitBody(maxBody, maxUpload, writeRouteError)
}

// writeRouteError writes err as a problem document, or in the
// {errorType, errorMessage} shape on the Omniscope-style routes.
func writeRouteError(c *gin.Context, err error) {
	if isWorkflowRoute(c.FullPath()) {
		lambda.WriteWorkflowError(c, err)
		return
	}
	httpapi.WriteError(c, err)
}

// noRoute writes a 404 for an unknown path, in the Omniscope shape when
// the path looks like an Omniscope-style route.
func noRoute(c *gin.Context) {
	writePathError(c, httpapi.NotFound(httpapi.CodeNotFound,
		fmt.Sprintf("no route for %s %s", c.Request.Method, c.Request.URL.Path)))
}

// noMethod writes a 405 for a known path with the wrong method, in the
// Omniscope shape on the Omniscope-style routes.
func noMethod(c *gin.Context) {
	writePathError(c, httpapi.NewProblem(http.StatusMethodNotAllowed, httpapi.CodeMethodNotAllowed,
		fmt.Sprintf("method %s is not allowed on %s", c.Request.Method, c.Request.URL.Path)))
}

// writePathError is writeRouteError for requests that matched no route,
// so that the shape follows the request path.
func writePathError(c *gin.Context, err error) {
	if isWorkflowPath(c.Request.URL.Path) {
		lambda.WriteWorkflowError(c, err)
		return
	}
	httpapi.WriteError(c, err)
}

// isWorkflowPath reports whether path has the form of an Omniscope-style
// route: /{project}/w/... or /{project}/instances/....
func isWorkflowPath(path string) bool {
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	return len(parts) > 1 && parts[0] != "api" && (parts[1] == "w" || parts[1] == "instances")
}
