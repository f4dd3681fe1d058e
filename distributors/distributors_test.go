package distributors

import (
	"testing"
	"time"

	"github.com/jobengine/jobengine/engine/distributor"
)

func TestBuiltinsRegistered(t *testing.T) {
	d, ok := distributor.Lookup(DummyTest)
	if !ok || d.Enabled || d.Action != "dummy_test_action" || d.Schedule.Interval != 15*time.Second {
		t.Errorf("dummy_test_action = %+v, want disabled, every 15s", d)
	}
	if _, ok := distributor.Lookup("jobs_cleanup"); ok {
		t.Error("jobs_cleanup is registered as a distributor; it is a maintenance service")
	}
}
