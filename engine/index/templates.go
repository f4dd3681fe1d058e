package index

// TemplateVersion is the version of the engine's index templates; it is
// stored in each template ("version") so an operator can tell which engine
// release installed them. Raise it whenever a mapping changes.
const TemplateVersion = 6

// templatePriority is above Elasticsearch's built-in templates (100–200), so
// no built-in pattern can take precedence on the engine's indices.
const templatePriority = 500

type template struct {
	name string
	body map[string]any
}

type obj = map[string]any

var (
	keyword   = obj{"type": "keyword", "ignore_above": 1024}
	date      = obj{"type": "date"}
	dateNanos = obj{"type": "date_nanos"}
	integer   = obj{"type": "integer"}
	long      = obj{"type": "long"}
	double    = obj{"type": "double"}
	boolean   = obj{"type": "boolean"}
	href      = obj{"properties": obj{"href": keyword}}
)

// jobsMapping maps every field of jobs.Job. "dynamic": false keeps fields
// added later to the document in _source without letting Elasticsearch
// guess their type; the payload (an action's arguments, any shape) is
// stored but never indexed, so no payload can cause a mapping conflict.
func jobsMapping() obj {
	return obj{
		"dynamic": false,
		"properties": obj{
			"id":       keyword,
			"action":   keyword,
			"state":    keyword,
			"priority": integer,
			"progress": integer,
			// Return codes of external processes may exceed int32.
			"return-code": long,
			"status-message": obj{
				"type":   "text",
				"fields": obj{"keyword": obj{"type": "keyword", "ignore_above": 1024}},
			},
			"target-resource":       href,
			"affected-resources":    href,
			"parent-job":            keyword,
			"nested-jobs":           keyword,
			"payload":               obj{"type": "object", "enabled": false},
			"tags":                  keyword,
			"created":               date,
			"updated":               date,
			"started":               date,
			"time-of-status-change": date,
			"duration":              double,
			"executor":              keyword,
			"attempt":               integer,
			"timeout":               double,
			"version":               long,
			"unique-key":            keyword,
			"created-by":            keyword,
			"tick":                  keyword,
			"host-summary": obj{"properties": obj{
				"hosts": integer, "ok": integer, "changed": integer, "failed": integer,
				"unreachable": integer, "skipped": integer,
				"failed-hosts": keyword, "unreachable-hosts": keyword,
				"per-host":  obj{"type": "object", "enabled": false},
				"truncated": obj{"type": "boolean"},
			}},
			// What the action returned (set_stats data): any shape, so
			// stored, never indexed.
			"artifacts": obj{"type": "object", "enabled": false},
			// Fields of jobs launched from templates (jobs.Launch).
			"kind":                 keyword,
			"sliced":               boolean,
			"template":             keyword,
			"launch-type":          keyword,
			"inventory":            keyword,
			"inventory-snapshot":   keyword,
			"limit":                keyword,
			"hosts":                integer,
			"slice-number":         integer,
			"slice-count":          integer,
			"template-slice-count": integer,
			"instance-groups":      keyword,
			"allow-simultaneous":   boolean,
			"relaunch-of":          keyword,
			"retry-of":             keyword,
			"cancel-requested":     boolean,
			// Workflow jobs and their node jobs: the graph is stored,
			// never indexed (its launch values hold anything).
			"workflow-template": keyword,
			"workflow-node":     keyword,
			"workflow":          obj{"type": "object", "enabled": false},
			// Ansible's extra variables and the launch values hold
			// anything: stored, never indexed.
			"ansible":       obj{"type": "object", "enabled": false},
			"launch-values": obj{"type": "object", "enabled": false},
			// The scheduler's fields (jobs.Scheduling).
			"impact":           integer,
			"concurrency-keys": keyword,
			"depends-on":       keyword,
			"explanation":      obj{"type": "text"},
			"instance-group":   keyword,
			"execution-node":   keyword,
			"fanout-group":     keyword,
		},
	}
}

// eventsMapping maps Event. Event times have nanosecond resolution so that
// `job logs --follow`, which asks for events after the last one it saw,
// neither skips nor repeats lines written within the same millisecond.
func eventsMapping() obj {
	return obj{
		"dynamic": false,
		"properties": obj{
			"id":       keyword,
			"job":      keyword,
			"line":     keyword,
			"time":     dateNanos,
			"type":     keyword,
			"level":    keyword,
			"message":  obj{"type": "text"},
			"state":    keyword,
			"progress": integer,
			"executor": keyword,
			"attempt":  integer,
			// Structured action events (Ansible's job events).
			"counter":     long,
			"event":       keyword,
			"uuid":        keyword,
			"parent-uuid": keyword,
			"playbook":    keyword,
			"play":        keyword,
			"task":        keyword,
			"task-action": keyword,
			"host":        keyword,
			"duration":    double,
			"changed":     obj{"type": "boolean"},
		},
	}
}

func (c *Client) templates() []template {
	meta := obj{"managed-by": "jobengine", "description": "installed by jobengine; changes are overwritten at start"}
	mk := func(index string, mapping obj) template {
		return template{name: index, body: obj{
			"index_patterns": []string{index},
			"priority":       templatePriority,
			"version":        TemplateVersion,
			"_meta":          meta,
			"template": obj{
				"settings": obj{"index": obj{"number_of_shards": 1}},
				"mappings": mapping,
			},
		}}
	}
	return []template{mk(c.JobsIndex(), jobsMapping()), mk(c.EventsIndex(), eventsMapping())}
}
