// Package distributors holds the built-in distributors. Each registers
// itself with engine/distributor in an init function, the same way every Go
// distributor is found; a YAML file of the same name in the configuration
// directory overrides its settings.
//
//   - dummy_test_action creates a dummy_test_action job every 15 seconds,
//     as the reference engine's test distributor did. It runs when named
//     (`jobengine distributor dummy_test_action`), or with --all when a
//     dummy_test_action.yaml file says `enabled: true`.
//
// jobs_cleanup, which deleted finished jobs, is no distributor any more: it
// creates no job, so it became the cleanup service of engine/maintenance,
// run by the member elected for the maintenance services. Its file
// (jobs_cleanup.yaml) still configures it; see engine/daemon.
package distributors

import (
	"time"

	"github.com/jobengine/jobengine/engine/distributor"
	"github.com/jobengine/jobengine/engine/schedule"
)

// DummyTest is the name of the built-in test distributor.
const DummyTest = "dummy_test_action"

func init() {
	distributor.Register(distributor.Definition{
		Name:        DummyTest,
		Description: "creates a dummy_test_action job every 15s, as the reference engine's test distributor did",
		Enabled:     false,
		Schedule:    schedule.Spec{Interval: 15 * time.Second},
		Action:      "dummy_test_action",
		Dedup:       distributor.DedupAlways,
	})
}
