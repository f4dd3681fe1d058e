package project

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jobengine/jobengine/engine/configstore"
	"github.com/jobengine/jobengine/engine/jobs"
)

// RevisionPrefix starts the result message of a successful project update
// that fetched a revision: "revision <commit>". The update action writes
// it; RecordRevision reads it back into the project.
const RevisionPrefix = "revision "

// RevisionMessage is the result message of an update that fetched rev.
func RevisionMessage(rev string) string { return RevisionPrefix + rev }

// UpdateRevision returns the revision a finished, successful update job
// fetched, or "".
func UpdateRevision(j *jobs.Job) string {
	if j == nil || j.State != jobs.Success || j.Action != UpdateAction {
		return ""
	}
	rev, ok := strings.CutPrefix(j.StatusMessage, RevisionPrefix)
	if !ok || !revRe.MatchString(rev) {
		return ""
	}
	return rev
}

// RecordRevision reads project name and, when its last update job has
// succeeded with a revision the project does not record yet, records it
// (compare-and-set; a project changed meanwhile is returned as read, its
// revision recorded by the next call). It returns the project.
func (s *Store) RecordRevision(ctx context.Context, js *jobs.Store, name string) (*Project, error) {
	p, ver, err := s.Get(ctx, name)
	if err != nil || p.LastUpdateJob == "" {
		return p, err
	}
	j, _, err := js.Get(ctx, p.LastUpdateJob)
	if errors.Is(err, jobs.ErrNotFound) {
		return p, nil // cleaned up: the recorded revision stands
	}
	if err != nil {
		return nil, err
	}
	rev := UpdateRevision(j)
	if rev == "" || rev == p.Revision {
		return p, nil
	}
	p.Revision = rev
	if err := s.Update(ctx, p, ver); err != nil {
		if errors.Is(err, configstore.ErrConflict) {
			p, _, err = s.Get(ctx, name)
			return p, err
		}
		return nil, err
	}
	return p, nil
}

// Revisions reads what project update jobs fetched, for runs that take the
// revision of the update their launch waited for
// (ansible.ProjectSource.RevisionOf).
type Revisions struct{ Jobs *jobs.Store }

// UpdateRevision returns the revision update job id fetched; an error says
// why there is none (the job is gone, did not succeed, or reported none).
func (r Revisions) UpdateRevision(ctx context.Context, id string) (string, error) {
	j, _, err := r.Jobs.Get(ctx, id)
	if err != nil {
		return "", fmt.Errorf("the project update %s: %w", id, err)
	}
	if j.Action != UpdateAction {
		return "", fmt.Errorf("%s is a job of action %s, not a project update", id, j.Action)
	}
	if j.State != jobs.Success {
		return "", fmt.Errorf("the project update %s is %s, not SUCCESS", id, j.State)
	}
	rev := UpdateRevision(j)
	if rev == "" {
		return "", fmt.Errorf("the project update %s reported no revision (%q)", id, j.StatusMessage)
	}
	return rev, nil
}
