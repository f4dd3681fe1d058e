package index

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
)

// MaxLogTextJobs bounds the jobs JobsWithLogText returns: the newest
// matching log lines are read, at most this many of them.
const MaxLogTextJobs = 1000

// textFilter is the clause of a job search by text (JobQuery.Text): the
// text is a prefix of the job's id (with or without "job/"), of its
// template, workflow template, action, inventory or creator (with or
// without "user/"), or every word of it is in the status message, or the
// job is one of ids (those whose log matched).
func textFilter(text string, ids []string) any {
	should := []any{}
	prefix := func(field, v string) { should = append(should, obj{"prefix": obj{field: v}}) }
	prefix("id", text)
	if !strings.HasPrefix(text, "job/") {
		prefix("id", "job/"+text)
	}
	for _, f := range []string{"template", "workflow-template", "action", "inventory", "created-by"} {
		prefix(f, text)
	}
	if !strings.HasPrefix(text, "user/") {
		prefix("created-by", "user/"+text)
	}
	should = append(should, obj{"match": obj{"status-message": obj{"query": text, "operator": "and"}}})
	if len(ids) > 0 {
		should = append(should, obj{"terms": obj{"id": ids}})
	}
	return obj{"bool": obj{"should": should, "minimum_should_match": 1}}
}

// JobsWithLogText returns the ids ("job/<uuid>") of the jobs with a log
// line or event message holding every word of text, those of the newest
// such lines first, at most limit of them (MaxLogTextJobs when 0 or more).
func (c *Client) JobsWithLogText(ctx context.Context, text string, limitN int) ([]string, error) {
	if strings.TrimSpace(text) == "" {
		return nil, fmt.Errorf("%w: an empty log text", ErrConfig)
	}
	if limitN <= 0 || limitN > MaxLogTextJobs {
		limitN = MaxLogTextJobs
	}
	body := obj{
		"query":   obj{"bool": obj{"filter": []any{obj{"match": obj{"message": obj{"query": text, "operator": "and"}}}}}},
		"size":    limitN,
		"_source": []string{"job"},
		"sort":    []any{obj{"time": obj{"order": "desc", "unmapped_type": "date_nanos"}}},
	}
	hits, err := c.search(ctx, "searching logs", c.EventsIndex(), body)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []string
	for _, h := range hits.Hits.Hits {
		var ev struct {
			Job string `json:"job"`
		}
		if err := json.Unmarshal(h.Source, &ev); err != nil {
			return nil, fmt.Errorf("%w: searching logs: document %s is not an event: %v", ErrRejected, h.ID, err)
		}
		if ev.Job != "" && !seen[ev.Job] {
			seen[ev.Job] = true
			out = append(out, ev.Job)
		}
	}
	return out, nil
}
