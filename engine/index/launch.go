package index

import (
	"time"

	"github.com/jobengine/jobengine/engine/jobs"
)

// launchFilters turns a launch filter into Elasticsearch filter clauses on
// the fields of jobs launched from templates.
func launchFilters(f jobs.LaunchFilter) []any {
	var out []any
	if f.Template != "" {
		out = append(out, obj{"term": obj{"template": f.Template}})
	}
	if f.Workflow != "" {
		out = append(out, obj{"term": obj{"workflow-template": f.Workflow}})
	}
	if f.SlicesOf != "" {
		out = append(out, obj{"term": obj{"parent-job": f.SlicesOf}})
	}
	if f.Sliced {
		out = append(out, obj{"term": obj{"sliced": true}})
	}
	if f.Slices {
		out = append(out, obj{"exists": obj{"field": "slice-number"}}, obj{"exists": obj{"field": "parent-job"}})
	}
	if f.LaunchType != "" {
		out = append(out, obj{"term": obj{"launch-type": string(f.LaunchType)}})
	}
	if !f.Since.IsZero() || !f.Until.IsZero() {
		r := obj{}
		if !f.Since.IsZero() {
			r["gte"] = f.Since.UTC().Format(time.RFC3339Nano)
		}
		if !f.Until.IsZero() {
			r["lte"] = f.Until.UTC().Format(time.RFC3339Nano)
		}
		out = append(out, obj{"range": obj{"created": r}})
	}
	if w := f.Within; w != nil {
		// Jobs of the scope's templates or workflows, or by its creators: a should of
		// terms (an empty list matches nothing).
		should := []any{
			obj{"terms": obj{"template": nonNil(w.Templates)}},
			obj{"terms": obj{"created-by": nonNil(w.CreatedBy)}},
			obj{"terms": obj{"workflow-template": nonNil(w.Workflows)}},
		}
		out = append(out, obj{"bool": obj{"should": should, "minimum_should_match": 1}})
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
