// Package openapi holds lambdaflow's OpenAPI 3 document, openapi.yaml,
// and serves it with Swagger UI. `make openapi` generates the document
// from the handlers' annotations (see convert) and the Go client in
// openapi/client from the document.
package openapi

import (
	_ "embed"
	"net/http"

	"github.com/gin-gonic/gin"
	swaggerFiles "github.com/swaggo/files"
	ginSwagger "github.com/swaggo/gin-swagger"

	"github.com/lambdaflow/lambdaflow/internal/httpapi"
)

// Spec is openapi.yaml, the OpenAPI 3 document of the API.
//
//go:embed openapi.yaml
var Spec []byte

// UIRoute is the gin route of Swagger UI and the document it shows.
const UIRoute = "/swagger/*any"

// RegisterUI adds Swagger UI at /swagger/index.html and the document at
// /swagger/openapi.yaml to r. Both hold no data of the service, so they
// need no token; requests made from the UI do.
func RegisterUI(r gin.IRouter) {
	ui := ginSwagger.WrapHandler(swaggerFiles.Handler,
		ginSwagger.URL("openapi.yaml"),
		ginSwagger.PersistAuthorization(true),
		ginSwagger.DefaultModelsExpandDepth(0))
	r.GET(UIRoute, func(c *gin.Context) {
		switch c.Param("any") {
		case "/openapi.yaml":
			c.Data(http.StatusOK, "application/yaml", Spec)
		case "", "/":
			c.Redirect(http.StatusMovedPermanently, "/swagger/index.html")
		case "/doc.json":
			// gin-swagger would read a swag document registered in this
			// process, and there is none: Swagger UI shows openapi.yaml.
			httpapi.NoRoute(c)
		default:
			ui(c)
		}
	})
}
