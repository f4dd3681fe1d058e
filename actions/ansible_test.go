package actions

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/jobengine/jobengine/engine/action"
	"github.com/jobengine/jobengine/engine/ansible"
)

type nopReporter struct{}

func (nopReporter) Progress(int)          {}
func (nopReporter) Status(string)         {}
func (nopReporter) Affected(...string)    {}
func (nopReporter) Log(level, msg string) {}

// TestPlaybookActionRefusesBadInput: a bad payload, or credentials named in
// a process without the key, fail the job with a message saying what to do,
// before anything runs.
func TestPlaybookActionRefusesBadInput(t *testing.T) {
	def, ok := action.Builtins().Lookup(AnsiblePlaybookName)
	if !ok || def.LostPolicy != action.Fail {
		t.Fatalf("ansible_playbook is not a built-in with the fail policy: %+v", def)
	}
	run := func(payload string) error {
		_, err := def.Runner.Run(context.Background(), &action.Job{ID: "job/x", Action: AnsiblePlaybookName, Payload: json.RawMessage(payload)}, nopReporter{})
		return err
	}
	if err := run(`{"project-dir": "/p"}`); !errors.Is(err, ansible.ErrPayload) {
		t.Errorf("bad payload: %v", err)
	}
	err := run(`{"project-dir": "/p", "playbook": "a.yml", "inventory": {"all": {"hosts": ["a"]}}, "credentials": ["web"]}`)
	if !errors.Is(err, ErrNoCredentials) || !strings.Contains(err.Error(), "--credential-key-file") {
		t.Errorf("credentials without a key: %v", err)
	}
}
