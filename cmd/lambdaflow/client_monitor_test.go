package main

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/lambdaflow/lambdaflow/openapi/client"
)

// checkMonitorRoutes calls the monitor's operations through the
// generated client after jobs have run.
func checkMonitorRoutes(t *testing.T, api *client.ClientWithResponses) {
	t.Helper()
	ctx := context.Background()

	queue, err := api.GetQueueWithResponse(ctx, &client.GetQueueParams{Recent: ptr(5)})
	if err != nil {
		t.Fatal(err)
	}
	expectCode(t, "GetQueue", queue.StatusCode(), queue.Body, http.StatusOK)
	if queue.JSON200.MaxConcurrentJobs < 1 {
		t.Errorf("GetQueue: maxConcurrentJobs %d, want at least 1", queue.JSON200.MaxConcurrentJobs)
	}
	if len(queue.JSON200.Recent) == 0 {
		t.Error("GetQueue: no recent jobs after jobs ran")
	}

	resources, err := api.GetResourcesWithResponse(ctx, &client.GetResourcesParams{Step: ptr("1m")})
	if err != nil {
		t.Fatal(err)
	}
	expectCode(t, "GetResources", resources.StatusCode(), resources.Body, http.StatusOK)
	if resources.JSON200.Step != "1m0s" && resources.JSON200.Step != "1m" {
		t.Errorf("GetResources: step %q, want 1m", resources.JSON200.Step)
	}

	chart, err := api.GetChartWithResponse(ctx, client.GetChartParamsMetricCpuSvg, &client.GetChartParams{Range: ptr("1h")})
	if err != nil {
		t.Fatal(err)
	}
	expectCode(t, "GetChart", chart.StatusCode(), chart.Body, http.StatusOK)
	if !strings.Contains(string(chart.Body), "<svg") {
		t.Errorf("GetChart: body is not SVG: %.100s", chart.Body)
	}

	nodes, err := api.ListNodesWithResponse(ctx)
	if err != nil {
		t.Fatal(err)
	}
	expectCode(t, "ListNodes", nodes.StatusCode(), nodes.Body, http.StatusOK)
	if len(nodes.JSON200.Nodes) != 1 || nodes.JSON200.Nodes[0].Name != expectedNodeName() || !nodes.JSON200.Nodes[0].Alive {
		t.Errorf("ListNodes: %s, want the node %s, alive", nodes.Body, expectedNodeName())
	}

	metrics, err := api.GetMetricsWithResponse(ctx)
	if err != nil {
		t.Fatal(err)
	}
	expectCode(t, "GetMetrics", metrics.StatusCode(), metrics.Body, http.StatusOK)
	if !strings.Contains(string(metrics.Body), "lambdaflow_running_jobs") {
		t.Error("GetMetrics: lambdaflow_running_jobs is missing")
	}

	checkEventStream(t, api)
}

// checkEventStream opens the event stream through the client, reads its
// first line and closes it.
func checkEventStream(t *testing.T, api *client.ClientWithResponses) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp, err := api.StreamEvents(ctx, &client.StreamEventsParams{LastEventId: ptr(0)})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("StreamEvents: status %d, want 200", resp.StatusCode)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil {
		t.Fatalf("StreamEvents: reading the first line: %v", err)
	}
	if line != ": connected\n" {
		t.Errorf("StreamEvents: first line %q, want \": connected\"", line)
	}
}
