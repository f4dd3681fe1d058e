package command

import (
	"encoding/json"
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
				&cli.DurationFlag{Name: "raw-duration", Value: 3 * time.Second, Usage: "length of the raw ZooKeeper phase"},
			},
			Action: func(c *cli.Context) error {
				cfg, err := zkConfig(c, nil)
				if err != nil {
					return err
				}
				res, err := bench.Queue(c.Context, bench.QueueOptions{
					ZK: cfg, Jobs: c.Int("jobs"), Depth: c.Int("depth"), Workers: c.Int("workers"),
					Connections: c.Int("connections"), RawDuration: c.Duration("raw-duration"),
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
