package actions

import (
	"github.com/jobengine/jobengine/engine/action"
	"github.com/jobengine/jobengine/engine/systemjob"
)

// The built-in system_job cannot reach ZooKeeper: an executor replaces it
// with one over its session (action.Registry.Replace), and a process that
// cannot fails the job saying so.
func init() {
	action.Register(systemjob.Definition(systemjob.Options{}))
}
