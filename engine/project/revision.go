package project

import (
	"context"
	"errors"
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
