package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/gin-gonic/gin"

	"github.com/lambdaflow/lambdaflow/internal/auth"
	"github.com/lambdaflow/lambdaflow/openapi"
)

// unspecifiedPrefixes lists path prefixes the validator lets through
// unchecked: the files of Swagger UI and of the admin page, and the
// document itself, are not part of the API.
var unspecifiedPrefixes = []string{"/swagger/", "/admin"}

// undocumentedRoutes lists the routes that serve those files.
var undocumentedRoutes = map[string]bool{
	"GET " + openapi.UIRoute: true,
	"GET /admin":             true,
	"GET /admin/*filepath":   true,
}

var (
	specOnce   sync.Once
	specDoc    *openapi3.T
	specRouter routers.Router
	specErr    error
)

// loadSpec loads openapi/openapi.yaml once for all tests.
func loadSpec(t *testing.T) (*openapi3.T, routers.Router) {
	t.Helper()
	specOnce.Do(func() {
		loader := openapi3.NewLoader()
		specDoc, specErr = loader.LoadFromData(openapi.Spec)
		if specErr != nil {
			return
		}
		if specErr = specDoc.Validate(loader.Context); specErr != nil {
			return
		}
		// The document's one server is "/", the host that serves it;
		// without servers the router matches any host.
		routerDoc := *specDoc
		routerDoc.Servers = nil
		specRouter, specErr = legacy.NewRouter(&routerDoc)

		// Bodies that are not JSON are validated as text; a schema of
		// format binary is read as bytes whatever its media type.
		for _, mediaType := range []string{"text/event-stream", "image/svg+xml", "text/html", "application/javascript"} {
			openapi3filter.RegisterBodyDecoder(mediaType, openapi3filter.PlainBodyDecoder)
		}
	})
	if specErr != nil {
		t.Fatalf("loading openapi/openapi.yaml: %v", specErr)
	}
	return specDoc, specRouter
}

// specValidator is an http.RoundTripper that checks every request and
// response against openapi/openapi.yaml and reports violations with
// t.Errorf:
//   - every response must be documented for its route and status, and its
//     body must match the schema;
//   - a request the document rejects may only get a 4xx;
//   - a request the document accepts must not get a 500.
//
// It records the operations it saw, so that a test can check that it
// reached every route.
type specValidator struct {
	t      *testing.T
	base   http.RoundTripper
	router routers.Router
	doc    *openapi3.T
	// tokens is true when the server checks bearer tokens, so that the
	// document's security requirements apply.
	tokens bool

	mu   sync.Mutex
	seen map[string]bool // operation ids
}

func newSpecValidator(t *testing.T, tokens bool) *specValidator {
	doc, router := loadSpec(t)
	return &specValidator{t: t, base: http.DefaultTransport, router: router, doc: doc,
		tokens: tokens, seen: map[string]bool{}}
}

// client returns an HTTP client whose requests v checks.
func (v *specValidator) client() *http.Client {
	return &http.Client{Transport: v}
}

// operations returns the ids of the operations v saw.
func (v *specValidator) operations() map[string]bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	seen := make(map[string]bool, len(v.seen))
	for id := range v.seen {
		seen[id] = true
	}
	return seen
}

// RoundTrip sends req and checks the exchange.
func (v *specValidator) RoundTrip(req *http.Request) (*http.Response, error) {
	for _, prefix := range unspecifiedPrefixes {
		if strings.HasPrefix(req.URL.Path, prefix) {
			return v.base.RoundTrip(req)
		}
	}
	body, err := readAll(&req.Body)
	if err != nil {
		return nil, err
	}
	name := req.Method + " " + req.URL.RequestURI()

	route, pathParams, routeErr := v.router.FindRoute(cloneRequest(req, body))
	if routeErr == nil && strings.HasSuffix(req.URL.Path, "/") && !strings.HasSuffix(route.Path, "/") {
		// The router forgives a trailing slash; the server does not.
		routeErr = errors.New("no path of the document ends in a slash")
	}
	if routeErr != nil {
		resp, err := v.base.RoundTrip(req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode < 400 || resp.StatusCode >= 500 {
			v.t.Errorf("openapi: %s is not in the document (%v) but got %d", name, routeErr, resp.StatusCode)
		}
		return resp, nil
	}
	v.mu.Lock()
	v.seen[route.Operation.OperationID] = true
	v.mu.Unlock()

	input := &openapi3filter.RequestValidationInput{
		Request:    cloneRequest(req, body),
		PathParams: pathParams,
		Route:      route,
		Options: &openapi3filter.Options{
			AuthenticationFunc: v.authenticate,
			MultiError:         true,
		},
	}
	requestErr := openapi3filter.ValidateRequest(req.Context(), input)

	resp, err := v.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	v.checkStatus(name, requestErr, resp.StatusCode)
	if err := v.checkResponse(input, resp); err != nil {
		v.t.Errorf("openapi: %s: response %d does not match the document: %v", name, resp.StatusCode, err)
	}
	return resp, nil
}

// checkStatus applies the rules that tie the request's validity to the
// response's status.
func (v *specValidator) checkStatus(name string, requestErr error, status int) {
	switch {
	case requestErr != nil && (status < 400 || status >= 500):
		v.t.Errorf("openapi: %s got %d, but the document rejects the request: %v", name, status, requestErr)
	case requestErr == nil && status == http.StatusInternalServerError:
		v.t.Errorf("openapi: %s got 500 for a request the document accepts", name)
	}
}

// checkResponse validates resp against the document. A server-sent event
// stream never ends, so only its status and headers are checked and its
// body is left to the caller.
func (v *specValidator) checkResponse(input *openapi3filter.RequestValidationInput, resp *http.Response) error {
	mediaType, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	options := &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true}
	var body []byte
	if mediaType == "text/event-stream" {
		options.ExcludeResponseBody = true
	} else {
		var err error
		if body, err = readAll(&resp.Body); err != nil {
			return fmt.Errorf("reading the body: %w", err)
		}
	}
	return openapi3filter.ValidateResponse(input.Request.Context(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: input,
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                options,
	})
}

// authenticate checks that a request carries a bearer token when the
// server uses tokens. The server decides whether the token is valid.
func (v *specValidator) authenticate(_ context.Context, input *openapi3filter.AuthenticationInput) error {
	if !v.tokens {
		return nil
	}
	scheme, token, _ := strings.Cut(input.RequestValidationInput.Request.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return errors.New("no bearer token")
	}
	return nil
}

// readAll reads *body and replaces it with a reader of the same bytes.
func readAll(body *io.ReadCloser) ([]byte, error) {
	if *body == nil || *body == http.NoBody {
		return nil, nil
	}
	data, err := io.ReadAll(*body)
	(*body).Close()
	if err != nil {
		return nil, err
	}
	*body = io.NopCloser(bytes.NewReader(data))
	return data, nil
}

// cloneRequest returns a copy of req with its own reader of body.
func cloneRequest(req *http.Request, body []byte) *http.Request {
	clone := req.Clone(req.Context())
	clone.Body = io.NopCloser(bytes.NewReader(body))
	if body == nil {
		clone.Body = http.NoBody
	}
	return clone
}

// ginPath turns an OpenAPI path such as /api/v1/jobs/{job}/outputs/{file}
// into gin's form, /api/v1/jobs/:job/outputs/*file. The last parameter of
// the output route is a catch-all because output names may hold slashes.
func ginPath(path string) string {
	parts := strings.Split(path, "/")
	for i, part := range parts {
		name, found := strings.CutPrefix(part, "{")
		if !found {
			continue
		}
		name = strings.TrimSuffix(name, "}")
		parts[i] = ":" + name
		if name == "file" && i == len(parts)-1 {
			parts[i] = "*" + name
		}
	}
	return strings.Join(parts, "/")
}

// TestDocumentMatchesRoutes checks that the OpenAPI document lists every
// route the server registers and nothing else, and that exactly the
// routes that need a token declare the bearer scheme.
func TestDocumentMatchesRoutes(t *testing.T) {
	doc, _ := loadSpec(t)
	h := startInProcess(t, "--tokens-file", writeTokensFile(t))
	routes := map[string]bool{}
	for _, r := range h.(interface{ Routes() gin.RoutesInfo }).Routes() {
		routes[auth.RouteKey(r.Method, r.Path)] = true
	}

	documented := map[string]bool{}
	for _, path := range doc.Paths.InMatchingOrder() {
		for method, op := range doc.Paths.Value(path).Operations() {
			key := auth.RouteKey(method, ginPath(path))
			documented[key] = true
			if !routes[key] {
				t.Errorf("the document lists %s (%s), which the server does not serve", key, op.OperationID)
				continue
			}
			secured := op.Security != nil && len(*op.Security) > 0
			if public := routeRoles[key] == auth.Public; secured == public {
				t.Errorf("%s: the document says token needed %v, but routeRoles gives %s", key, secured, routeRoles[key])
			}
		}
	}
	for key := range routes {
		if !documented[key] && !undocumentedRoutes[key] {
			t.Errorf("%s is not in openapi/openapi.yaml; annotate its handler and run make openapi", key)
		}
	}
}
