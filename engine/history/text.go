package history

import (
	"context"
	"fmt"
	"strings"
	"unicode"

	"github.com/jobengine/jobengine/engine/jobs"
)

// MaxText bounds Query.Text, in bytes.
const MaxText = 200

// textMatch reports whether j matches the search text t (Query.Text): t
// is a prefix of its id (with or without "job/"), of its template,
// workflow template, action, inventory or creator (with or without
// "user/"), or every word of t is a word of its status message. Names
// compare exactly, as the history's keyword fields do; words ignore case,
// as its text fields do.
func textMatch(t string, j *jobs.Job) bool {
	if strings.HasPrefix(j.ID, t) || strings.HasPrefix(j.ID, "job/"+t) || strings.HasPrefix(j.CreatedBy, "user/"+t) {
		return true
	}
	for _, v := range []string{j.Template, j.WorkflowTemplate, j.Action, j.Inventory, j.CreatedBy} {
		if v != "" && strings.HasPrefix(v, t) {
			return true
		}
	}
	want := words(t)
	if len(want) == 0 || j.StatusMessage == "" {
		return false
	}
	have := map[string]bool{}
	for _, w := range words(j.StatusMessage) {
		have[w] = true
	}
	for _, w := range want {
		if !have[w] {
			return false
		}
	}
	return true
}

// words splits s as Elasticsearch's standard analyzer roughly does: runs
// of letters and digits, lower-cased.
func words(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
}

// logMatches returns the jobs whose log matches q.Text, from the history's
// events (live jobs' lines are indexed as they are written); nil without
// a history or a text.
func (r *Reader) logMatches(ctx context.Context, q Query) (map[string]bool, []string, error) {
	if r.es == nil || q.Text == "" || len(words(q.Text)) == 0 {
		return nil, nil, nil
	}
	qctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	ids, err := r.es.JobsWithLogText(qctx, q.Text, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("searching the logs: %w", err)
	}
	set := make(map[string]bool, len(ids))
	for _, id := range ids {
		set[id] = true
	}
	return set, ids, nil
}
