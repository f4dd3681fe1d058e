package command

import (
	"encoding/json"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/jobengine/jobengine/engine/bench"
)

func benchCommand() *cli.Command {
	return &cli.Command{
		Name:  "bench",
		Usage: "measure the engine against its ZooKeeper",
		Subcommands: []*cli.Command{{
			Name:  "queue",
			Usage: "queue throughput and put-to-take latency next to the raw ZooKeeper ceiling (JSON)",
			Description: "Runs under a scratch root below --zk-root and leaves its nodes behind: point it at a\n" +
				"test ZooKeeper. ratio = jobs_per_s / (zk_multi_txn_per_s / 3).",
			Flags: []cli.Flag{
				&cli.IntFlag{Name: "jobs", Value: 20000, Usage: "entries taken and consumed"},
				&cli.IntFlag{Name: "depth", Value: 1000, Usage: "entries left queued while measuring"},
				&cli.IntFlag{Name: "workers", Value: 32, Usage: "workers in all"},
				&cli.IntFlag{Name: "connections", Value: 4, Usage: "ZooKeeper connections"},
				&cli.IntFlag{Name: "batch", Value: 1, Usage: "entries a worker takes and consumes per transaction"},
				&cli.BoolFlag{Name: "skip-latency", Usage: "leave out the latency phase, which first drains the whole queue"},
				&cli.DurationFlag{Name: "raw-duration", Value: 3 * time.Second, Usage: "length of the raw ZooKeeper phase"},
			},
			Action: func(c *cli.Context) error {
				cfg, err := zkConfig(c, nil)
				if err != nil {
					return err
				}
				res, err := bench.Queue(c.Context, bench.QueueOptions{
					ZK: cfg, Jobs: c.Int("jobs"), Depth: c.Int("depth"), Workers: c.Int("workers"),
					Connections: c.Int("connections"), RawDuration: c.Duration("raw-duration"), Batch: c.Int("batch"),
					SkipLatency: c.Bool("skip-latency"),
				})
				if err != nil {
					return err
				}
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			},
		}, {
			Name:  "executors",
			Usage: "end-to-end no-op job throughput with 1, 2 and 4 executor processes, claim latency, memory (JSON)",
			Description: "Starts executor processes of this binary under a scratch root below --zk-root, drains a\n" +
				"backlog of echo jobs with each count, then times created → RUNNING on an idle and a busy cluster.",
			Flags: []cli.Flag{
				&cli.IntFlag{Name: "jobs", Value: 10000, Usage: "backlog drained by each executor count"},
				&cli.IntSliceFlag{Name: "executors", Value: cli.NewIntSlice(1, 2, 4), Usage: "executor counts"},
				&cli.IntFlag{Name: "threads", Value: 8, Usage: "workers per executor"},
				&cli.IntFlag{Name: "probes", Value: 200, Usage: "jobs timed on the idle cluster"},
				&cli.StringFlag{Name: "executor-binary", Usage: "run the executors from this jobengine binary (another build, for a side-by-side; default: this one)"},
				&cli.StringFlag{Name: "workload", Value: bench.WorkloadNoop, Usage: "what the jobs do: noop (nothing, no log line) or echo (one log line each)"},
				&cli.IntFlag{Name: "zk-pid", Usage: "process id of the ZooKeeper server, to report its CPU time per job"},
				&cli.DurationFlag{Name: "raw-duration", Value: 3 * time.Second, Usage: "length of the raw ZooKeeper phase"},
			},
			Action: func(c *cli.Context) error {
				cfg, err := zkConfig(c, nil)
				if err != nil {
					return err
				}
				if w := c.String("workload"); w != bench.WorkloadNoop && w != bench.WorkloadEcho {
					return usagef("--workload %q: use %s or %s", w, bench.WorkloadNoop, bench.WorkloadEcho)
				}
				self, err := os.Executable()
				if err != nil {
					return err
				}
				if b := c.String("executor-binary"); b != "" {
					self = b
				}
				res, err := bench.Executors(c.Context, bench.ExecutorOptions{
					ZK: cfg, Binary: self, Counts: c.IntSlice("executors"), Jobs: c.Int("jobs"),
					Threads: c.Int("threads"), Probes: c.Int("probes"), RawDuration: c.Duration("raw-duration"),
					Workload: c.String("workload"), ZKPID: c.Int("zk-pid"),
				})
				if err != nil {
					return err
				}
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			},
		}},
	}
}
