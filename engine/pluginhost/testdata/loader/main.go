// Command loader loads the plugins of a directory with pluginhost, starts a
// job of the given action and prints the pids of the plugin processes,
// then waits to be killed. Tests SIGKILL it and check that no plugin
// process survives it.
//
//	loader DIR ACTION
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/jobengine/jobengine/engine/action"
	"github.com/jobengine/jobengine/engine/pluginhost"
)

type nopReporter struct{ started chan struct{} }

func (r nopReporter) Progress(int) {}
func (r nopReporter) Status(string) {
	select {
	case r.started <- struct{}{}:
	default:
	}
}
func (r nopReporter) Affected(...string) {}
func (r nopReporter) Log(string, string) {}

func main() {
	h, err := pluginhost.Load(context.Background(), pluginhost.Options{Dir: os.Args[1]})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	reg := &action.Registry{}
	if err := h.Register(reg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	def, ok := reg.Lookup(os.Args[2])
	if !ok {
		fmt.Fprintln(os.Stderr, "no such action", os.Args[2])
		os.Exit(1)
	}
	rep := nopReporter{started: make(chan struct{}, 1)}
	go def.Runner.Run(context.Background(), &action.Job{ID: "job/loader", Action: def.Name}, rep)
	<-rep.started // the job runs in a plugin process
	for _, p := range h.Processes() {
		fmt.Println(p.PID)
	}
	fmt.Println("ready")
	select {}
}
