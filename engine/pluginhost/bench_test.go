package pluginhost_test

import (
	"context"
	"testing"

	"github.com/jobengine/jobengine/engine/action"
	"github.com/jobengine/jobengine/engine/pluginhost"
)

// BenchmarkJob measures what running one job costs through each path: a
// built-in action, a plugin action in a reused process (the default), and a
// plugin action in a new process per job (MaxIdle -1). The actions do
// nothing, so the numbers are the per-job overhead.
//
//	go test -run '^$' -bench BenchmarkJob -benchtime 2s ./engine/pluginhost
func BenchmarkJob(b *testing.B) {
	j := job("noop", `{"name":"bench"}`)
	run := func(b *testing.B, rn action.Runner) {
		b.Helper()
		ctx := context.Background()
		for b.Loop() {
			if _, err := rn.Run(ctx, j, &recorder{}); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("builtin", func(b *testing.B) {
		run(b, action.RunnerFunc(func(context.Context, *action.Job, action.Reporter) (action.Result, error) {
			return action.Result{}, nil
		}))
	})
	b.Run("plugin-reused-process", func(b *testing.B) {
		h, _ := load(b, pluginhost.Options{Dir: pluginDir(b, "sdkplugin")})
		run(b, runner(b, h, "noop"))
	})
	b.Run("plugin-process-per-job", func(b *testing.B) {
		h, _ := load(b, pluginhost.Options{Dir: pluginDir(b, "sdkplugin"), MaxIdle: -1})
		run(b, runner(b, h, "noop"))
	})
}
