// Command hello is the smallest plugin, built by the SDK's tests.
package main

import (
	"context"

	"github.com/jobengine/jobengine/actions/sdk"
)

func main() {
	sdk.Serve(sdk.Plugin{
		Version: "1.0.0",
		Actions: []sdk.Action{{Name: "hello", Run: func(context.Context, *sdk.Job) (sdk.Result, error) {
			return sdk.ReturnCode(0), nil
		}}},
	})
}
