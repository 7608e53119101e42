package main

import (
	"fmt"
	"net"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/lambdaflow/lambdaflow/internal/auth"
	"github.com/lambdaflow/lambdaflow/internal/httpapi"
	"github.com/lambdaflow/lambdaflow/lambda"
	"github.com/lambdaflow/lambdaflow/openapi"
)

// routeRoles maps every route to the least role that may use it. A
// route missing here needs admin, and a test checks that every
// registered route is listed. A runner may stop any job, not only its own, because
// execute with cancelExisting already lets it stop a project's jobs and
// the stop record names the token.
var routeRoles = map[string]auth.Role{
	"GET /healthz": auth.Public,
	"GET /readyz":  auth.Public,
	// Swagger UI and the OpenAPI document hold no data of the service.
	"GET " + openapi.UIRoute: auth.Public,
	// The admin page's static files hold no data; the page sends the
	// user's token with each API call it makes.
	"GET /admin":           auth.Public,
	"GET /admin/*filepath": auth.Public,

	"GET /api/v1/projects":                        auth.Viewer,
	"GET /api/v1/projects/:project":               auth.Viewer,
	"GET /api/v1/instances/:instance":             auth.Viewer,
	"GET /api/v1/jobs":                            auth.Viewer,
	"GET /api/v1/jobs/:job":                       auth.Viewer,
	"GET /api/v1/jobs/:job/definition":            auth.Viewer,
	"GET /api/v1/jobs/:job/outputs/*file":         auth.Viewer,
	"GET /api/v1/settings":                        auth.Viewer,
	"GET /api/v1/monitor/queue":                   auth.Viewer,
	"GET /api/v1/monitor/resources":               auth.Viewer,
	"GET /api/v1/monitor/charts/:metric":          auth.Viewer,
	"GET /api/v1/monitor/nodes":                   auth.Viewer,
	"GET /api/v1/events":                          auth.Viewer,
	"GET /metrics":                                auth.Viewer,
	"POST /api/v1/projects/:project/validate":     auth.Runner,
	"POST /api/v1/projects/:project/execute":      auth.Runner,
	"POST /api/v1/projects/:project/lambda":       auth.Runner,
	"POST /api/v1/projects/:project/lambda/batch": auth.Runner,
	"POST /api/v1/jobs/:job/stop":                 auth.Runner,
	"POST /api/v1/projects":                       auth.Admin,
	"PUT /api/v1/projects/:project":               auth.Admin,
	"DELETE /api/v1/projects/:project":            auth.Admin,
	"PATCH /api/v1/projects/:project/parameters":  auth.Admin,
	"PATCH /api/v1/settings":                      auth.Admin,

	"GET /:project/w/job/:job/state":                     auth.Viewer,
	"GET /:project/instances/:instance/w/job/:job/state": auth.Viewer,
	"GET /:project/w/param":                              auth.Viewer,
	"GET /:project/w/param/:name":                        auth.Viewer,
	"POST /:project/w/execute":                           auth.Runner,
	"POST /:project/w/lambdaexecute":                     auth.Runner,
	"POST /:project/w/lambda/execute":                    auth.Runner,
	"POST /:project/w/uploadandexecute":                  auth.Runner,
	"POST /:project/w/updateparams":                      auth.Admin,
}

// accessMiddleware checks bearer tokens against routeRoles. The
// Omniscope-style routes get their 401 and 403 in the
// {errorType, errorMessage} shape, and every other route gets a problem
// document.
func accessMiddleware(store *auth.Store) gin.HandlerFunc {
	return auth.Middleware(auth.Config{
		Store: store,
		Roles: routeRoles,
		WriteError: func(c *gin.Context, err error) {
			if isWorkflowRoute(c.FullPath()) {
				lambda.WriteWorkflowError(c, err)
				return
			}
			httpapi.WriteError(c, err)
		},
	})
}

// isWorkflowRoute reports whether path, a gin full path, is one of the
// Omniscope-style routes.
func isWorkflowRoute(path string) bool {
	return strings.HasPrefix(path, "/:project/")
}

// checkListenAddr rejects a non-loopback listen address when no tokens
// are configured, unless insecure is true.
func checkListenAddr(addr string, haveTokens, insecure bool) error {
	if haveTokens || insecure {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("invalid --addr %q: %w", addr, err)
	}
	if isLoopback(host) {
		return nil
	}
	listenHost := host
	if listenHost == "" {
		listenHost = "every interface"
	}
	return fmt.Errorf("--addr %s listens on %s, but no API tokens are configured, "+
		"so anyone who can reach it could run and change workflows; "+
		"give --tokens-file, listen on a loopback address such as 127.0.0.1, "+
		"or pass --insecure to serve without tokens anyway", addr, listenHost)
}

// isLoopback reports whether host is "localhost" or an address in
// 127.0.0.0/8 or ::1. An empty host or 0.0.0.0 means every interface
// and is not loopback.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
