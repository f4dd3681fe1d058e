package command

import (
	"bufio"
	"fmt"
	"io"

	"github.com/jobengine/jobengine/engine/jobs"
)

// checkCount checks --count against the other flags of `job add`.
func checkCount(count int, n jobs.NewJob, fanout, asJSON bool) error {
	switch {
	case count < 1 || count > jobs.MaxCreateLike:
		return usagef("--count %d is out of range: type 1–%d", count, jobs.MaxCreateLike)
	case count == 1:
		return nil
	case n.UniqueKey != "":
		return usagef("--count %d with --unique-key: only one job may hold a key; leave out one of them", count)
	case fanout:
		return usagef("--count %d with --fanout: a fan-out creates one job per executor; leave out --count", count)
	case asJSON:
		return usagef("--count %d with --json: --json prints one job document; with --count the ids are printed one per line", count)
	}
	return nil
}

// addLike creates count jobs like n and prints their ids, one per line.
// On a failure midway it prints the ids of the jobs created and says how
// many there are.
func addLike(cl *client, w io.Writer, n jobs.NewJob, count int) error {
	out := bufio.NewWriterSize(w, 64<<10)
	made := 0
	err := cl.store.CreateLike(cl.ctx, n, count, func(js []*jobs.Job) {
		for _, j := range js {
			fmt.Fprintln(out, j.ID)
		}
		made += len(js)
	})
	if ferr := out.Flush(); err == nil {
		err = ferr
	}
	if err != nil && made > 0 {
		return cl.fail(fmt.Errorf("%d of %d jobs created (their ids are printed above): %w", made, count, err), "")
	}
	return cl.fail(err, "")
}
