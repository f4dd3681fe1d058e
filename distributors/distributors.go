// Package distributors holds the built-in distributors. Each registers
// itself with engine/distributor in an init function, the same way every Go
// distributor is found; a YAML file of the same name in the configuration
// directory overrides its settings.
//
//   - jobs_cleanup deletes finished jobs from ZooKeeper once they are
//     indexed and older than the retention. It creates no job: the leader
//     deletes them itself. Daily; `jobengine distributor --all` runs it.
//   - dummy_test_action creates a dummy_test_action job every 15 seconds,
//     as the reference engine's test distributor did. It runs when named
//     (`jobengine distributor dummy_test_action`), or with --all when a
//     dummy_test_action.yaml file says `enabled: true`.
package distributors

import (
	"time"

	"github.com/jobengine/jobengine/engine/distributor"
	"github.com/jobengine/jobengine/engine/schedule"
)

// Names of the built-in distributors.
const (
	JobsCleanup = "jobs_cleanup"
	DummyTest   = "dummy_test_action"
)

func init() {
	distributor.Register(distributor.Definition{
		Name: JobsCleanup,
		Description: "deletes finished jobs from ZooKeeper once indexed and older than the retention " +
			"(options: retention, default " + DefaultRetention + "; batch, default " + defaultBatchText + ")",
		Enabled:      true,
		Schedule:     schedule.Spec{Cron: "@daily"},
		Options:      map[string]string{OptRetention: DefaultRetention, OptBatch: defaultBatchText},
		CheckOptions: checkCleanupOptions,
		Generator:    cleanup,
	})
	distributor.Register(distributor.Definition{
		Name:        DummyTest,
		Description: "creates a dummy_test_action job every 15s, as the reference engine's test distributor did",
		Enabled:     false,
		Schedule:    schedule.Spec{Interval: 15 * time.Second},
		Action:      "dummy_test_action",
		Dedup:       distributor.DedupAlways,
	})
}
