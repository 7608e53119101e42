package lambda

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/lambdaflow/lambdaflow/internal/httpapi"
	"github.com/lambdaflow/lambdaflow/projects"
)

// Parameter types in Omniscope's words.
const (
	ParamTypeText    = "TEXT"
	ParamTypeNumber  = "NUMBER"
	ParamTypeBoolean = "BOOLEAN"
	ParamTypeDate    = "DATE"
	ParamTypeFile    = "FILE"
)

// paramTypes maps each lambdaflow parameter type to Omniscope's word.
// Choice reads as TEXT, integer as NUMBER and datetime as DATE.
var paramTypes = map[string]string{
	projects.TypeText:     ParamTypeText,
	projects.TypeChoice:   ParamTypeText,
	projects.TypeNumber:   ParamTypeNumber,
	projects.TypeInteger:  ParamTypeNumber,
	projects.TypeBoolean:  ParamTypeBoolean,
	projects.TypeDate:     ParamTypeDate,
	projects.TypeDatetime: ParamTypeDate,
	projects.TypeFile:     ParamTypeFile,
}

// ParamValue is one parameter with the value a plain execution uses.
type ParamValue struct {
	// Name names the parameter.
	Name string `json:"name"`
	// Type is TEXT, NUMBER, BOOLEAN, DATE or FILE.
	Type string `json:"type" enums:"TEXT,NUMBER,BOOLEAN,DATE,FILE"`
	// Value is the current value, else the default, else null. Dates are
	// YYYY-MM-DD and date-times RFC 3339 strings.
	Value any `json:"value" extensions:"x-nullable"`
}

// ParamValues lists a project's parameters in declaration order.
type ParamValues struct {
	ParamValues []ParamValue `json:"paramValues"`
}

// UpdateParamsRequest is the body of POST /{project}/w/updateparams.
type UpdateParamsRequest = WorkflowParams

// UpdateParamsResponse reports a successful update.
type UpdateParamsResponse struct {
	// Status is SUCCESS.
	Status string `json:"status" enums:"SUCCESS"`
}

// workflowParams godoc
//
//	@Summary	List parameter values (Omniscope style)
//	@ID			workflowListParams
//	@Tags		omniscope
//	@Produce	json
//	@Param		project	path		string	true	"project name"
//	@Success	200		{object}	ParamValues
//	@Failure	404		{object}	WorkflowError
//	@Security	BearerAuth
//	@Router		/{project}/w/param [get]
func (s *Service) workflowParams(c *gin.Context) error {
	rec, err := s.load(c)
	if err != nil {
		return err
	}
	values := make([]ParamValue, len(rec.Parameters))
	for i := range rec.Parameters {
		values[i] = paramValue(rec, &rec.Parameters[i])
	}
	c.JSON(http.StatusOK, ParamValues{ParamValues: values})
	return nil
}

// workflowParam godoc
//
//	@Summary	Get one parameter value (Omniscope style)
//	@ID			workflowGetParam
//	@Tags		omniscope
//	@Produce	json
//	@Param		project	path		string	true	"project name"
//	@Param		name	path		string	true	"parameter name"
//	@Success	200		{object}	ParamValue
//	@Failure	404		{object}	WorkflowError
//	@Security	BearerAuth
//	@Router		/{project}/w/param/{name} [get]
func (s *Service) workflowParam(c *gin.Context) error {
	rec, err := s.load(c)
	if err != nil {
		return err
	}
	name := c.Param("name")
	for i := range rec.Parameters {
		if rec.Parameters[i].Name == name {
			c.JSON(http.StatusOK, paramValue(rec, &rec.Parameters[i]))
			return nil
		}
	}
	return httpapi.NotFound(ErrorTypeParameterNotFound, fmt.Sprintf("project %s has no parameter %q", rec.Name, name))
}

func paramValue(rec *projects.Record, def *projects.Parameter) ParamValue {
	value, ok := rec.Values[def.Name]
	if !ok {
		value = def.Default
	}
	return ParamValue{Name: def.Name, Type: paramTypes[def.Type], Value: value}
}

// workflowUpdateParams godoc
//
//	@Summary		Set current parameter values (Omniscope style)
//	@ID				workflowUpdateParams
//	@Description	Sets the values that plain executions use, like PATCH /api/v1/projects/{project}/parameters. A null value removes the current value, so the default applies again. Nothing changes unless every value is valid. waitForIdle has no effect, because setting values runs nothing.
//	@Tags			omniscope
//	@Accept			json
//	@Produce		json
//	@Param			project				path		string				true	"project name"
//	@Param			request				body		UpdateParamsRequest	true	"the values to set"
//	@Success		200					{object}	UpdateParamsResponse
//	@Failure		400,404,413,415,422	{object}	WorkflowError
//	@Security		BearerAuth
//	@Router			/{project}/w/updateparams [post]
func (s *Service) workflowUpdateParams(c *gin.Context) error {
	var req UpdateParamsRequest
	if err := httpapi.DecodeJSONAllowUnknown(c, &req, s.cfg.MaxBodyBytes, false); err != nil {
		return err
	}
	if errs := checkUpdateList("updates", req.Updates, false); len(errs) > 0 {
		return httpapi.Validation("the parameter updates are invalid", errs)
	}
	name := c.Param("project")
	if len(req.Updates) == 0 {
		// Nothing to store, and a store write would change the version.
		if _, err := s.load(c); err != nil {
			return err
		}
		c.JSON(http.StatusOK, UpdateParamsResponse{Status: "SUCCESS"})
		return nil
	}

	patch := make(map[string]any, len(req.Updates))
	for _, u := range req.Updates {
		patch[u.Name] = u.Value
	}
	rec, err := projects.UpdateValues(c.Request.Context(), s.projects, name, patch, 0)
	if errors.Is(err, projects.ErrNotFound) {
		return httpapi.NotFound(httpapi.CodeProjectNotFound, fmt.Sprintf("project %q not found", name))
	}
	if errors.Is(err, projects.ErrVersionMismatch) {
		return httpapi.NewProblem(http.StatusConflict, httpapi.CodePreconditionFailed,
			fmt.Sprintf("project %s kept changing while its values were set; retry", name))
	}
	if err != nil {
		return err
	}
	s.log.Info("current values set", "project", rec.Name, "version", rec.Version)
	c.JSON(http.StatusOK, UpdateParamsResponse{Status: "SUCCESS"})
	return nil
}
