package ansible

import (
	"bytes"
	"encoding/json"
	"sort"
	"strings"
)

// Redacted replaces a secret wherever it appears in output.
const Redacted = "********"

// Redactor replaces known secret values in text and in JSON documents. The
// zero value redacts nothing. A multi-line secret (a private key) is also
// redacted line by line, since output may show a part of it.
type Redactor struct {
	secrets []string // longest first, so a secret containing another goes first
}

// NewRedactor returns a redactor of the given secrets (empty ones ignored).
func NewRedactor(secrets ...string) *Redactor {
	r := &Redactor{}
	r.Add(secrets...)
	return r
}

// Add adds secrets.
func (r *Redactor) Add(secrets ...string) {
	seen := map[string]bool{}
	for _, s := range r.secrets {
		seen[s] = true
	}
	add := func(s string) {
		if s != "" && !seen[s] {
			seen[s] = true
			r.secrets = append(r.secrets, s)
		}
	}
	for _, s := range secrets {
		add(s)
		if t := strings.TrimSpace(s); t != s {
			add(t)
		}
		if strings.Contains(s, "\n") {
			for _, line := range strings.Split(s, "\n") {
				if line = strings.TrimSpace(line); len(line) >= 16 {
					add(line)
				}
			}
		}
	}
	sort.SliceStable(r.secrets, func(i, j int) bool { return len(r.secrets[i]) > len(r.secrets[j]) })
}

// Empty reports whether there is nothing to redact.
func (r *Redactor) Empty() bool { return r == nil || len(r.secrets) == 0 }

// Secrets returns the values redacted (for tests that look for leaks).
func (r *Redactor) Secrets() []string {
	if r == nil {
		return nil
	}
	return append([]string(nil), r.secrets...)
}

// String returns s with every secret replaced by Redacted.
func (r *Redactor) String(s string) string {
	if r.Empty() {
		return s
	}
	for _, sec := range r.secrets {
		if strings.Contains(s, sec) {
			s = strings.ReplaceAll(s, sec, Redacted)
		}
	}
	return s
}

// JSON returns a JSON document with every secret replaced in its strings,
// keys and numbers (a numeric secret may be shown as a number). Escaping
// differs between JSON encoders, so the document is decoded rather than
// searched as bytes. A document that does not decode is redacted as text.
func (r *Redactor) JSON(doc []byte) []byte {
	if r.Empty() {
		return doc
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return []byte(r.String(string(doc)))
	}
	v, changed := r.walk(v)
	if !changed {
		return doc
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return []byte(r.String(string(doc)))
	}
	return bytes.TrimRight(b.Bytes(), "\n")
}

func (r *Redactor) walk(v any) (any, bool) {
	switch x := v.(type) {
	case string:
		y := r.String(x)
		return y, y != x
	case json.Number:
		if y := r.String(string(x)); y != string(x) {
			return y, true
		}
		return x, false
	case []any:
		changed := false
		for i := range x {
			var c bool
			x[i], c = r.walk(x[i])
			changed = changed || c
		}
		return x, changed
	case map[string]any:
		changed := false
		for k, val := range x {
			nv, c := r.walk(val)
			nk := r.String(k)
			if nk != k {
				delete(x, k)
				c = true
			}
			x[nk] = nv
			changed = changed || c
		}
		return x, changed
	}
	return v, false
}
