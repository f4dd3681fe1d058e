package daemon

import (
	"fmt"
	"strconv"
	"time"

	"github.com/jobengine/jobengine/engine/distributor"
	"github.com/jobengine/jobengine/engine/maintenance"
)

// CleanupName is the name the cleanup had as a distributor. The
// distributor directory keeps configuring it under that name
// (jobs_cleanup.yaml: enabled, interval or cron, time-zone, catch-up, and
// the options retention and batch), and `jobengine distributor
// jobs_cleanup` still starts a process that hosts it.
const CleanupName = "jobs_cleanup"

// Options of jobs_cleanup.yaml.
const (
	// OptRetention is how long a finished job stays: a duration such as
	// 7d or 36h.
	OptRetention = "retention"
	// OptBatch is how many jobs are deleted between two leadership checks.
	OptBatch = "batch"
)

// CleanupSettings reserves jobs_cleanup in the distributor directory: with
// it, distributor.Load reads jobs_cleanup.yaml as the cleanup's settings
// rather than as a distributor.
func CleanupSettings() distributor.SettingsSpec {
	return distributor.SettingsSpec{
		Name:     CleanupName,
		About:    "the cleanup of finished jobs, a maintenance service, not a distributor",
		Enabled:  true,
		Schedule: maintenance.DefaultCleanupSchedule,
		Options: map[string]string{
			OptRetention: "7d",
			OptBatch:     strconv.Itoa(maintenance.DefaultCleanupBatch),
		},
		CheckOptions: func(opts map[string]string) error {
			_, err := cleanupOptions(maintenance.CleanupConfig{}, opts)
			return err
		},
	}
}

// CleanupFromSettings turns the settings of jobs_cleanup (see
// CleanupSettings) into the cleanup's configuration.
func CleanupFromSettings(s distributor.Settings) (maintenance.CleanupConfig, error) {
	c := maintenance.CleanupConfig{Disabled: !s.Enabled, Schedule: s.Schedule, CatchUp: s.CatchUp}
	c, err := cleanupOptions(c, s.Options)
	if err != nil {
		return c, configErr("Cleanup", "%s: %v", CleanupName, err)
	}
	return c, nil
}

func cleanupOptions(c maintenance.CleanupConfig, opts map[string]string) (maintenance.CleanupConfig, error) {
	for k := range opts {
		if k != OptRetention && k != OptBatch {
			return c, fmt.Errorf("unknown option %q (%s has %s and %s)", k, CleanupName, OptRetention, OptBatch)
		}
	}
	if v, ok := opts[OptRetention]; ok {
		d, err := ParseRetention(v)
		if err != nil {
			return c, err
		}
		c.Retention = d
	}
	if v, ok := opts[OptBatch]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maintenance.MaxCleanupBatch {
			return c, fmt.Errorf("batch %q: want a whole number 1–%d", v, maintenance.MaxCleanupBatch)
		}
		c.Batch = n
	}
	return c, nil
}

// ParseRetention parses a retention: a positive duration that may count
// days, such as 7d, 36h or 1d12h.
func ParseRetention(v string) (time.Duration, error) {
	d, err := distributor.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("retention %q: want a positive duration such as 7d or 36h", v)
	}
	return d, nil
}
