package auth

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/lambdaflow/lambdaflow/internal/httpapi"
)

const contextPrincipal = "lambdaflow.principal"

// Config configures Middleware.
type Config struct {
	// Store contains the valid tokens, at least one.
	Store *Store
	// Roles maps a route, written RouteKey(method, path) with gin's
	// full path, to the least role it needs. A registered route missing
	// from Roles needs Admin, so a forgotten route fails closed. A request
	// that matches no route (404 or 405) needs Viewer.
	Roles map[string]Role
	// WriteError writes the 401 or 403 *httpapi.Problem. Nil means
	// httpapi.WriteError.
	WriteError func(c *gin.Context, err error)
}

// RouteKey returns the key of a route in Config.Roles, such as
// "GET /api/v1/jobs/:job".
func RouteKey(method, path string) string {
	return method + " " + path
}

// Middleware returns gin middleware that admits a request only when it
// carries "Authorization: Bearer TOKEN" with a token whose role is at
// least the route's. A missing, malformed or unknown token gets 401
// UNAUTHORIZED with "WWW-Authenticate: Bearer", and a token with too
// small a role gets 403 FORBIDDEN. An admitted request's Principal is
// available through PrincipalFrom. Tokens are never logged.
func Middleware(cfg Config) gin.HandlerFunc {
	writeError := cfg.WriteError
	if writeError == nil {
		writeError = httpapi.WriteError
	}
	return func(c *gin.Context) {
		need := Viewer
		if path := c.FullPath(); path != "" {
			role, ok := cfg.Roles[RouteKey(c.Request.Method, path)]
			if !ok {
				role = Admin
			}
			need = role
		}
		if need == Public {
			c.Next()
			return
		}
		route := c.Request.Method + " " + c.Request.URL.Path
		token, ok := bearerToken(c.GetHeader("Authorization"))
		if !ok {
			httpapi.Logger(c).Debug("request without bearer token rejected", "route", route)
			c.Header("WWW-Authenticate", `Bearer realm="lambdaflow"`)
			writeError(c, httpapi.NewProblem(http.StatusUnauthorized, httpapi.CodeUnauthorized,
				"missing bearer token; send Authorization: Bearer TOKEN"))
			return
		}
		principal, ok := cfg.Store.Lookup(token)
		if !ok {
			httpapi.Logger(c).Debug("request with unknown bearer token rejected", "route", route)
			c.Header("WWW-Authenticate", `Bearer realm="lambdaflow", error="invalid_token"`)
			writeError(c, httpapi.NewProblem(http.StatusUnauthorized, httpapi.CodeUnauthorized,
				"invalid bearer token"))
			return
		}
		if principal.Role < need {
			httpapi.Logger(c).Debug("request with too small a role rejected", "route", route,
				"principal", principal.String(), "required_role", need.String())
			writeError(c, httpapi.NewProblem(http.StatusForbidden, httpapi.CodeForbidden,
				fmt.Sprintf("this route needs the role %s or higher; the token has the role %s", need, principal.Role)))
			return
		}
		c.Set(contextPrincipal, principal)
		c.Next()
	}
}

// bearerToken returns the token of an "Authorization: Bearer TOKEN"
// header. The scheme is case-insensitive (RFC 7235).
func bearerToken(header string) (string, bool) {
	scheme, token, found := strings.Cut(header, " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// PrincipalFrom returns the caller that Middleware admitted, and false
// when the service runs without tokens.
func PrincipalFrom(c *gin.Context) (Principal, bool) {
	v, ok := c.Get(contextPrincipal)
	if !ok {
		return Principal{}, false
	}
	p, ok := v.(Principal)
	return p, ok
}

// Caller names who sends the request, for records such as a stop: the
// token's principal when the service uses tokens, else the client's
// address.
func Caller(c *gin.Context) string {
	if principal, ok := PrincipalFrom(c); ok {
		return principal.String()
	}
	return c.ClientIP()
}
