package projects

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/lambdaflow/lambdaflow/internal/httpapi"
	"github.com/lambdaflow/lambdaflow/pool"
)

// Scheduler is the part of the pool that the project routes use.
type Scheduler interface {
	Submit(ctx context.Context, sub pool.Submission) (*pool.Job, error)
	StopJob(ctx context.Context, id, by, reason string) (*pool.Job, error)
	ActiveJobIDs(lockKey string) []string
	// Reserve returns the error Submit would return for n more jobs with
	// the given timeout: a 422 problem for a timeout above the maximum,
	// or a *pool.QueueFullError when they do not fit in the queue now.
	Reserve(n int, timeout time.Duration) error
}

// APIConfig configures the project routes.
type APIConfig struct {
	// MaxDefinitionBytes bounds a definition request body; zero means
	// httpapi.DefaultMaxBodyBytes.
	MaxDefinitionBytes int64
	// Logger receives lifecycle messages; nil means slog.Default().
	Logger *slog.Logger
}

// API serves /api/v1/projects.
type API struct {
	store  Store
	sched  Scheduler
	cfg    APIConfig
	logger *slog.Logger
}

// NewAPI returns the project routes over store, submitting jobs to sched.
func NewAPI(store Store, sched Scheduler, cfg APIConfig) *API {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	return &API{store: store, sched: sched, cfg: cfg, logger: logger.With("component", "projects")}
}

// Register adds the routes to rg, the /api/v1 group.
func (a *API) Register(rg *gin.RouterGroup) {
	g := rg.Group("/projects")
	g.GET("", httpapi.Handle(a.list))
	g.POST("", httpapi.Handle(a.create))
	g.GET("/:project", httpapi.Handle(a.get))
	g.PUT("/:project", httpapi.Handle(a.replace))
	g.DELETE("/:project", httpapi.Handle(a.delete))
	g.PATCH("/:project/parameters", httpapi.Handle(a.setValues))
	g.POST("/:project/validate", httpapi.Handle(a.validate))
	g.POST("/:project/execute", httpapi.Handle(a.execute))
}

// ProjectList is the response of GET /projects.
type ProjectList struct {
	Projects []*Record `json:"projects"`
}

// ProjectRequest is the body of POST /projects and PUT /projects/{project}:
// a definition, optionally with current parameter values. The read-only
// fields of a project response (version, createdAt, updatedAt) are
// accepted and ignored, so a fetched project can be sent back as it is.
type ProjectRequest struct {
	Project
	// Values sets current parameter values; they are checked like a run's.
	Values    map[string]any `json:"values,omitempty"`
	Version   *int64         `json:"version,omitempty" swaggerignore:"true"`
	CreatedAt *string        `json:"createdAt,omitempty" swaggerignore:"true"`
	UpdatedAt *string        `json:"updatedAt,omitempty" swaggerignore:"true"`
}

// list godoc
//
//	@Summary	List projects
//	@ID			listProjects
//	@Tags		projects
//	@Produce	json
//	@Success	200	{object}	ProjectList
//	@Security	BearerAuth
//	@Router		/api/v1/projects [get]
func (a *API) list(c *gin.Context) error {
	list, err := a.store.List(c.Request.Context())
	if err != nil {
		return err
	}
	if list == nil {
		list = []*Record{}
	}
	c.JSON(http.StatusOK, ProjectList{Projects: list})
	return nil
}

// create godoc
//
//	@Summary		Create a project
//	@ID				createProject
//	@Description	Validates the definition and stores it. Every problem is reported at once.
//	@Tags			projects
//	@Accept			json
//	@Produce		json
//	@Param			project				body		ProjectRequest	true	"the definition"
//	@Success		201					{object}	Record
//	@Header			201					{string}	Location	"the project's URL"
//	@Header			201					{string}	ETag		"the project's version"
//	@Failure		400,409,413,415,422	{object}	httpapi.Problem
//	@Security		BearerAuth
//	@Router			/api/v1/projects [post]
func (a *API) create(c *gin.Context) error {
	rec, err := a.decodeRecord(c, "")
	if err != nil {
		return err
	}
	if err := a.store.Create(c.Request.Context(), rec); err != nil {
		if errors.Is(err, ErrExists) {
			return httpapi.NewProblem(http.StatusConflict, httpapi.CodeProjectExists,
				fmt.Sprintf("project %q already exists; use PUT to replace it", rec.Name))
		}
		return err
	}
	a.logger.Info("project created", "project", rec.Name)
	c.Header("Location", "/api/v1/projects/"+rec.Name)
	writeRecord(c, http.StatusCreated, rec)
	return nil
}

// get godoc
//
//	@Summary	Get a project
//	@ID			getProject
//	@Tags		projects
//	@Produce	json
//	@Param		project			path		string	true	"project name"
//	@Param		If-None-Match	header		string	false	"ETag from an earlier GET; a match answers 304"
//	@Success	200				{object}	Record
//	@Header		200				{string}	ETag	"the project's version, for If-Match"
//	@Success	304				"The project still has the ETag in If-None-Match"
//	@Header		304				{string}	ETag	"the project's version"
//	@Failure	404				{object}	httpapi.Problem
//	@Security	BearerAuth
//	@Router		/api/v1/projects/{project} [get]
func (a *API) get(c *gin.Context) error {
	rec, err := a.load(c)
	if err != nil {
		return err
	}
	if noneMatch(c.GetHeader("If-None-Match"), etag(rec)) {
		c.Header("ETag", etag(rec))
		c.Status(http.StatusNotModified)
		return nil
	}
	writeRecord(c, http.StatusOK, rec)
	return nil
}

// replace godoc
//
//	@Summary		Replace a project
//	@ID				replaceProject
//	@Description	Replaces the definition. With If-Match, the project must still have that ETag.
//	@Tags			projects
//	@Accept			json
//	@Produce		json
//	@Param			project					path		string			true	"project name"
//	@Param			If-Match				header		string			false	"ETag from GET"
//	@Param			definition				body		ProjectRequest	true	"the new definition"
//	@Success		200						{object}	Record
//	@Header			200						{string}	ETag	"the project's new version"
//	@Failure		400,404,412,413,415,422	{object}	httpapi.Problem
//	@Security		BearerAuth
//	@Router			/api/v1/projects/{project} [put]
func (a *API) replace(c *gin.Context) error {
	ifVersion, err := parseIfMatch(c.GetHeader("If-Match"))
	if err != nil {
		return err
	}
	rec, err := a.decodeRecord(c, c.Param("project"))
	if err != nil {
		return err
	}
	if err := a.store.Update(c.Request.Context(), rec, ifVersion); err != nil {
		return storeProblem(err, rec.Name)
	}
	a.logger.Info("project replaced", "project", rec.Name, "version", rec.Version)
	writeRecord(c, http.StatusOK, rec)
	return nil
}

// delete godoc
//
//	@Summary		Delete a project
//	@ID				deleteProject
//	@Description	Jobs of the project keep running with their own snapshot of the definition.
//	@Tags			projects
//	@Param			project	path	string	true	"project name"
//	@Success		204
//	@Failure		404	{object}	httpapi.Problem
//	@Security		BearerAuth
//	@Router			/api/v1/projects/{project} [delete]
func (a *API) delete(c *gin.Context) error {
	name := c.Param("project")
	if err := a.store.Delete(c.Request.Context(), name); err != nil {
		return storeProblem(err, name)
	}
	a.logger.Info("project deleted", "project", name)
	c.Status(http.StatusNoContent)
	return nil
}

func (a *API) load(c *gin.Context) (*Record, error) {
	name := c.Param("project")
	rec, err := a.store.Get(c.Request.Context(), name)
	if err != nil {
		return nil, storeProblem(err, name)
	}
	return rec, nil
}

// decodeRecord reads and validates a definition. pathName, when set, is
// the name in the URL, which the body must match or may leave out.
func (a *API) decodeRecord(c *gin.Context, pathName string) (*Record, error) {
	var req ProjectRequest
	if err := httpapi.DecodeJSON(c, &req, a.cfg.MaxDefinitionBytes, false); err != nil {
		return nil, err
	}
	if pathName != "" && req.Name == "" {
		req.Name = pathName
	}
	errs := req.Project.Validate()
	if pathName != "" && req.Name != pathName {
		errs = append(errs, httpapi.FieldError{Field: "name",
			Message: fmt.Sprintf("must match the project in the URL, %q; got %q", pathName, req.Name)})
	}
	if len(errs) == 0 && len(req.Values) > 0 {
		typed, valErrs := req.Project.Convert("values", req.Values)
		errs = valErrs
		req.Values = req.Project.JSONValues(typed)
	}
	if len(errs) > 0 {
		return nil, httpapi.Validation("the project definition is invalid", errs)
	}
	if req.Values == nil {
		req.Values = map[string]any{}
	}
	if req.Parameters == nil {
		req.Parameters = []Parameter{}
	}
	return &Record{Project: req.Project, Values: req.Values}, nil
}

// noneMatch reports whether an If-None-Match header lists tag, comparing
// weakly as RFC 9110 requires for GET.
func noneMatch(header, tag string) bool {
	for _, item := range strings.Split(header, ",") {
		item = strings.TrimPrefix(strings.TrimSpace(item), "W/")
		if item == "*" || item == tag {
			return true
		}
	}
	return false
}

func writeRecord(c *gin.Context, status int, rec *Record) {
	c.Header("ETag", etag(rec))
	c.JSON(status, rec)
}

func etag(rec *Record) string {
	return `"` + strconv.FormatInt(rec.Version, 10) + `"`
}

// parseIfMatch returns the version an If-Match header requests, 0 when
// the header is absent or "*".
func parseIfMatch(h string) (int64, error) {
	h = strings.TrimSpace(h)
	if h == "" || h == "*" {
		return 0, nil
	}
	v, err := strconv.ParseInt(strings.Trim(strings.TrimPrefix(h, "W/"), `"`), 10, 64)
	if err != nil || v < 1 {
		return 0, httpapi.BadRequest("If-Match", fmt.Sprintf("If-Match must be an ETag returned by GET, such as \"3\"; got %s", h))
	}
	return v, nil
}

func storeProblem(err error, name string) error {
	switch {
	case errors.Is(err, ErrNotFound):
		return httpapi.NotFound(httpapi.CodeProjectNotFound, fmt.Sprintf("project %q not found", name))
	case errors.Is(err, ErrVersionMismatch):
		return httpapi.NewProblem(http.StatusPreconditionFailed, httpapi.CodePreconditionFailed,
			fmt.Sprintf("project %q changed since the ETag in If-Match; fetch it again", name))
	}
	return err
}

// parseTimeout reads a request's timeout field: a positive Go duration.
func parseTimeout(field, s string) (time.Duration, *httpapi.FieldError) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, &httpapi.FieldError{Field: field, Message: fmt.Sprintf("must be a positive Go duration such as 30s or 5m, got %q", s)}
	}
	return d, nil
}

// definitionJSON returns the snapshot a job runs.
func definitionJSON(p *Project) (json.RawMessage, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encoding definition of %s: %w", p.Name, err)
	}
	return b, nil
}
