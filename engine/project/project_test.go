package project

import (
	"errors"
	"testing"

	"github.com/jobengine/jobengine/engine/configstore"
)

func TestValidate(t *testing.T) {
	for _, p := range []Project{
		{Name: "a", Kind: Git, URL: "https://github.com/org/repo.git"},
		{Name: "a", Kind: Git, URL: "git@github.com:org/repo.git", Branch: "release/2.0"},
		{Name: "a", Kind: Git, URL: "ssh://git@host:2222/org/repo.git", Branch: "v1.2.3"},
		{Name: "a", Kind: Git, URL: "https://token@example.com/r.git"}, // a user name alone is no password
		{Name: "a", Kind: Git, URL: "file:///srv/git/r.git"},
		{Name: "a", Kind: Directory, Directory: "/srv/playbooks", UpdateOnLaunch: true, CacheTimeout: 600},
	} {
		if err := p.Validate(); err != nil {
			t.Errorf("%+v: %v", p, err)
		}
	}
	for name, p := range map[string]Project{
		"no kind":         {Name: "a"},
		"no url":          {Name: "a", Kind: Git},
		"password":        {Name: "a", Kind: Git, URL: "https://u:p@example.com/r.git"},
		"scheme":          {Name: "a", Kind: Git, URL: "ftp://example.com/r.git"},
		"no host":         {Name: "a", Kind: Git, URL: "https:///r.git"},
		"blank":           {Name: "a", Kind: Git, URL: "https://example.com/r .git"},
		"relative file":   {Name: "a", Kind: Git, URL: "file:r.git"},
		"branch ..":       {Name: "a", Kind: Git, URL: "https://example.com/r.git", Branch: "a..b"},
		"branch -":        {Name: "a", Kind: Git, URL: "https://example.com/r.git", Branch: "-x"},
		"branch .lock":    {Name: "a", Kind: Git, URL: "https://example.com/r.git", Branch: "main.lock"},
		"git with dir":    {Name: "a", Kind: Git, URL: "https://example.com/r.git", Directory: "/srv"},
		"relative dir":    {Name: "a", Kind: Directory, Directory: "srv"},
		"unclean dir":     {Name: "a", Kind: Directory, Directory: "/srv/../etc"},
		"dir with branch": {Name: "a", Kind: Directory, Directory: "/srv", Branch: "main"},
		"cache timeout":   {Name: "a", Kind: Directory, Directory: "/srv", CacheTimeout: -1},
		"revision":        {Name: "a", Kind: Directory, Directory: "/srv", Revision: "not-a-hash"},
		"last update job": {Name: "a", Kind: Directory, Directory: "/srv", LastUpdateJob: "job/x"},
		"bad name":        {Name: "a b", Kind: Directory, Directory: "/srv"},
	} {
		if err := p.Validate(); !errors.Is(err, configstore.ErrInvalid) && err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestUpdateJobNamesNoCredential(t *testing.T) {
	n, err := UpdateJob(&Project{Name: "site", Kind: Git, URL: "https://example.com/r.git", Branch: "main"}, "cli")
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Validate(); err != nil {
		t.Fatal(err)
	}
	if n.Action != UpdateAction || n.UniqueKey != "project-update:site" || string(n.Payload) != `{"project":"site","kind":"git","url":"https://example.com/r.git","branch":"main"}` {
		t.Fatalf("update job: %+v %s", n, n.Payload)
	}
}
