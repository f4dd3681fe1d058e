// Command affect is a test plugin: its action reports as many affected
// resources as it is asked to, of the size it is asked, and a status
// message it is given, within what the plugin protocol allows.
package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/jobengine/jobengine/actions/sdk"
)

func main() {
	sdk.Serve(sdk.Plugin{
		Version: "1.0.0",
		Actions: []sdk.Action{{Name: "affect-many", Description: "reports {count} affected resources of {size} bytes", Run: affect}},
	})
}

func affect(_ context.Context, job *sdk.Job) (sdk.Result, error) {
	var a struct {
		Count  int    `json:"count"`
		Size   int    `json:"size"`
		Status string `json:"status"`
	}
	if err := job.Decode(&a); err != nil {
		return sdk.Result{}, err
	}
	hrefs := make([]string, a.Count)
	for i := range hrefs {
		p := fmt.Sprintf("deployment/%04d/", i)
		hrefs[i] = p + strings.Repeat("x", max(a.Size-len(p), 0))
	}
	job.Affected(hrefs...)
	if a.Status != "" {
		job.Status(a.Status)
	}
	return sdk.Result{Message: a.Status}, nil
}
