package ansible

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestParsePayloadRefusesBadInput(t *testing.T) {
	inv := `{"all": {"hosts": ["a"]}}`
	for _, tc := range []struct {
		payload string
		want    string
	}{
		{``, "empty"},
		{`[]`, "cannot unmarshal array"},
		{`{"project-dir": "/p", "playbook": "a.yml", "inventory": ` + inv + `, "playbok": "x"}`, `unknown field "playbok"`},
		{`{"playbook": "a.yml", "inventory": ` + inv + `}`, `"project-dir" is missing`},
		{`{"project-dir": "p", "playbook": "a.yml", "inventory": ` + inv + `}`, "not an absolute path"},
		{`{"project-dir": "/p", "inventory": ` + inv + `}`, `"playbook" is missing`},
		{`{"project-dir": "/p", "playbook": "/etc/a.yml", "inventory": ` + inv + `}`, "must be relative"},
		{`{"project-dir": "/p", "playbook": "../a.yml", "inventory": ` + inv + `}`, "leaves the project"},
		{`{"project-dir": "/p", "playbook": "x/../../a.yml", "inventory": ` + inv + `}`, "leaves the project"},
		{`{"project-dir": "/p", "playbook": "a.yml"}`, `"inventory": missing`},
		{`{"project-dir": "/p", "playbook": "a.yml", "inventory": [1]}`, "not a JSON object"},
		{`{"project-dir": "/p", "playbook": "a.yml", "inventory": {"g": {"hosts": {"a": {}}}}}`, `group "g"`},
		{`{"project-dir": "/p", "playbook": "a.yml", "inventory": {"g": {"hosts": ["a b"]}}}`, "is not a host name"},
		{`{"project-dir": "/p", "playbook": "a.yml", "inventory": {"g": {"hostz": ["a"]}}}`, `unknown field "hostz"`},
		{`{"project-dir": "/p", "playbook": "a.yml", "inventory": ` + inv + `, "extra-vars": [1]}`, `"extra-vars" must be a JSON object`},
		{`{"project-dir": "/p", "playbook": "a.yml", "inventory": ` + inv + `, "forks": 5000}`, `"forks" 5000 is out of range`},
		{`{"project-dir": "/p", "playbook": "a.yml", "inventory": ` + inv + `, "verbosity": 9}`, `"verbosity" 9 is out of range`},
		{`{"project-dir": "/p", "playbook": "a.yml", "inventory": ` + inv + `, "limit": "a\nb"}`, `"limit" must be one line`},
		{`{"project-dir": "/p", "playbook": "a.yml", "inventory": ` + inv + `, "credentials": ["a", "a"]}`, "named twice"},
		{`{"project-dir": "/p", "playbook": "a.yml", "inventory": ` + inv + `, "credentials": ["a/b"]}`, "not a credential name"},
		{`{"project-dir": "/p", "project": {"name": "s", "kind": "directory", "directory": "/p"}, "playbook": "a.yml", "inventory": ` + inv + `}`, "not both"},
		{`{"project": {"name": "s", "kind": "svn"}, "playbook": "a.yml", "inventory": ` + inv + `}`, `kind "svn"`},
		{`{"project": {"name": "s", "kind": "git", "url": "file:///r", "revision": "HEAD~1"}, "playbook": "a.yml", "inventory": ` + inv + `}`, "not a commit hash"},
		{`{"project": {"name": "s", "kind": "git", "url": "--upload-pack=x"}, "playbook": "a.yml", "inventory": ` + inv + `}`, "want https://"},
		{`{"project-dir": "/p", "playbook": "a.yml", "inventory": ` + inv + `, "inventory-source": {"inventory": "i"}}`, "not both"},
		{`{"project-dir": "/p", "playbook": "a.yml", "inventory-source": {"inventory": "i", "slice-number": 4, "slice-count": 3}}`, "slice 4 of 3"},
		{`{"project-dir": "/p", "playbook": "a.yml", "inventory-source": {"inventory": "i/j"}}`, "not an inventory name"},
		{`{"project-dir": "/p", "playbook": "a.yml", "inventory": ` + inv + `, "tags": "--x"}`, `"tags" must be one line`},
	} {
		_, err := ParsePayload(json.RawMessage(tc.payload))
		if !errors.Is(err, ErrPayload) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want ErrPayload saying %q", tc.payload, err, tc.want)
		}
	}
	p, err := ParsePayload(json.RawMessage(`{"project-dir": "/p", "playbook": "sub/a.yml", "inventory": {"g": {"hosts": ["b", "a"], "children": ["h"], "vars": {"x": 1}}, "h": ["c"], "_meta": {"hostvars": {"d": {}}}}, "forks": 2}`))
	if err != nil {
		t.Fatal(err)
	}
	hosts, _ := InventoryHosts(p.Inventory)
	if strings.Join(hosts, ",") != "a,b,c,d" {
		t.Errorf("hosts %v", hosts)
	}
	if got := PayloadImpact(&p); got != 3 {
		t.Errorf("impact %d, want min(4 hosts, 2 forks)+1 = 3", got)
	}
}

func TestImpact(t *testing.T) {
	for _, tc := range [][3]int{{0, 5, 1}, {1, 5, 2}, {3, 5, 4}, {100, 5, 6}, {100, 0, 6}, {100, 50, 51}} {
		if got := Impact(tc[0], tc[1]); got != tc[2] {
			t.Errorf("Impact(%d hosts, %d forks) = %d, want %d", tc[0], tc[1], got, tc[2])
		}
	}
}

func TestRedactor(t *testing.T) {
	key := "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END OPENSSH PRIVATE KEY-----\n"
	r := NewRedactor("s3cr\"et<>", "424242", key, "")
	if got := r.String(`pw=s3cr"et<> and s3cr"et<>`); got != "pw=******** and ********" {
		t.Errorf("String: %q", got)
	}
	if got := r.String("line b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ shown"); strings.Contains(got, "b3Blbn") {
		t.Errorf("a line of a multi-line secret is not redacted: %q", got)
	}
	doc := []byte(`{"msg": "s3cr\"et\u003c\u003e", "n": 424242, "list": ["x424242y"], "s3cr\"et<>": true, "ok": "fine"}`)
	got := string(r.JSON(doc))
	for _, leak := range []string{"s3cr", "424242", `\u003c`} {
		if strings.Contains(got, leak) {
			t.Errorf("JSON leaks %q: %s", leak, got)
		}
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(got), &m); err != nil || m["ok"] != "fine" || m["n"] != Redacted {
		t.Errorf("JSON result %s (%v)", got, err)
	}
	clean := []byte(`{"a": 1}`)
	if string(r.JSON(clean)) != string(clean) {
		t.Error("a document without secrets changed")
	}
}
