package action

import (
	"strconv"
	"strings"
)

// Field is one key and value of a structured log line (an external
// plugin's job.Log.Info("greeting", "name", "Alice") has the field
// name=Alice).
type Field struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// FieldLogger is implemented by reporters that keep the fields of a log
// line apart from its message: the executor's keeps them in the job's log
// as data and in its own log as fields. An action checks for it through
// LogFields.
type FieldLogger interface {
	LogFields(level, message string, fields []Field)
}

// LogFields reports a log line with fields to r: apart from the message
// when r keeps them (FieldLogger), else rendered into it as RenderFields
// does.
func LogFields(r Reporter, level, message string, fields []Field) {
	if fl, ok := r.(FieldLogger); ok && len(fields) > 0 {
		fl.LogFields(level, message, fields)
		return
	}
	r.Log(level, RenderFields(message, fields))
}

// RenderFields renders a log line for people: "message key=value ...",
// with values quoted when they are empty or hold spaces, quotes or '='.
func RenderFields(message string, fields []Field) string {
	if len(fields) == 0 {
		return message
	}
	var b strings.Builder
	b.WriteString(message)
	for _, f := range fields {
		v := f.Value
		if v == "" || strings.ContainsAny(v, " \t\n\"=") {
			v = strconv.Quote(v)
		}
		b.WriteString(" " + f.Key + "=" + v)
	}
	return b.String()
}
