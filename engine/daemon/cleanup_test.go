package daemon

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jobengine/jobengine/engine/distributor"
	"github.com/jobengine/jobengine/engine/maintenance"
	"github.com/jobengine/jobengine/engine/schedule"
)

// TestCleanupSettingsFile: jobs_cleanup.yaml, the file of the cleanup when
// it was a distributor, configures the cleanup service.
func TestCleanupSettingsFile(t *testing.T) {
	load := func(content string) (maintenance.CleanupConfig, error) {
		t.Helper()
		dir := t.TempDir()
		if content != "" {
			if err := os.WriteFile(filepath.Join(dir, "jobs_cleanup.yaml"), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		cat, err := distributor.Load(dir, CleanupSettings())
		if err != nil {
			t.Fatal(err)
		}
		st, err := cat.Settings(CleanupName)
		if err != nil {
			return maintenance.CleanupConfig{}, err
		}
		return CleanupFromSettings(st)
	}
	c, err := load("")
	if err != nil || c.Disabled || c.Retention != 7*24*time.Hour || c.Batch != 100 || c.Schedule != maintenance.DefaultCleanupSchedule {
		t.Fatalf("defaults: %+v, %v", c, err)
	}
	c, err = load("cron: \"15 3 * * *\"\ntime-zone: Europe/Zurich\noptions:\n  retention: 14d\n  batch: 50\n")
	if err != nil || c.Disabled || c.Retention != 14*24*time.Hour || c.Batch != 50 ||
		c.Schedule != (schedule.Spec{Cron: "15 3 * * *", TimeZone: "Europe/Zurich"}) {
		t.Fatalf("from the file: %+v, %v", c, err)
	}
	if c, err = load("enabled: false\n"); err != nil || !c.Disabled {
		t.Fatalf("enabled: false: %+v, %v", c, err)
	}
	for _, bad := range []string{"options:\n  retention: soon\n", "options:\n  retention: -1h\n", "options:\n  batch: 0\n", "options:\n  retain: 1d\n", "action: echo\n"} {
		if _, err := load(bad); !errors.Is(err, distributor.ErrConfig) {
			t.Errorf("%q accepted: %v", bad, err)
		}
	}
}
