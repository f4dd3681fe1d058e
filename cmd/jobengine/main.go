// Command jobengine is the job engine's single binary: executor,
// distributor, and the job, queue and cluster tools.
package main

import (
	"os"

	"github.com/jobengine/jobengine/engine/command"

	// Built-in actions and distributors register themselves.
	_ "github.com/jobengine/jobengine/actions"
	_ "github.com/jobengine/jobengine/distributors"
)

func main() {
	os.Exit(command.Main(os.Args, os.Stdout, os.Stderr))
}
