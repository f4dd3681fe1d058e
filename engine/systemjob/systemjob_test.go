package systemjob

import (
	"errors"
	"strings"
	"testing"

	"github.com/jobengine/jobengine/engine/jobs"
)

func TestPayloads(t *testing.T) {
	days := func(n int) *int { return &n }
	for name, c := range map[string]struct {
		kind Kind
		days *int
		want string // "" for none
	}{
		"jobs, default days": {CleanupJobs, nil, ""},
		"jobs, 0 days":       {CleanupJobs, days(0), ""},
		"tokens":             {CleanupTokens, nil, ""},
		"unknown kind":       {"cleanup_all", nil, `no system job kind "cleanup_all" (have: cleanup_jobs, cleanup_tokens`},
		"negative days":      {CleanupJobs, days(-1), "give a whole number 0–36500"},
		"too many days":      {CleanupJobs, days(MaxDays + 1), "give a whole number 0–36500"},
		"days for tokens":    {CleanupTokens, days(3), "cleanup_tokens takes no days"},
	} {
		n, err := NewJob(c.kind, c.days, "me")
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", name, err)
		case c.want != "" && (!errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: %v, want ErrInvalid with %q", name, err, c.want)
		case c.want == "":
			if n.Action != jobs.SystemAction || n.Scheduling.Impact != jobs.SystemImpact || n.Scheduling.ConcurrencyKeys[0] != jobs.SystemKey {
				t.Errorf("%s: %+v", name, n)
			}
			p, err := DecodePayload(n.Payload)
			if err != nil || p.Kind != c.kind {
				t.Errorf("%s: payload %s: %+v %v", name, n.Payload, p, err)
			}
		}
	}
	for _, raw := range []string{`{"kind": "cleanup_jobs", "extra": 1}`, `{"days": 3}`, `[]`} {
		if _, err := DecodePayload([]byte(raw)); !errors.Is(err, ErrInvalid) {
			t.Errorf("payload %s: %v, want ErrInvalid", raw, err)
		}
	}
}
