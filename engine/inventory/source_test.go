package inventory

import (
	"errors"
	"testing"
)

// TestSourceValidate: paths that leave the project, bad projects, cache
// timeouts out of range or without update on launch are refused.
func TestSourceValidate(t *testing.T) {
	ok := []Source{
		{Project: "site", Path: "hosts.yml"},
		{Project: "site", Path: "inv/script.py", UpdateOnLaunch: true, CacheTimeout: 3600},
		{Project: "site", Path: "inv", LastUpdateJob: "job/0123abcd-0123-4567-89ab-0123456789ab"},
	}
	for _, s := range ok {
		if err := s.Validate(); err != nil {
			t.Errorf("%+v: %v", s, err)
		}
	}
	bad := []Source{
		{Project: "", Path: "hosts.yml"},
		{Project: "site", Path: ""},
		{Project: "site", Path: "/etc/hosts"},
		{Project: "site", Path: "../hosts"},
		{Project: "site", Path: "a/../../hosts"},
		{Project: "site", Path: "a//b"},
		{Project: "site", Path: "."},
		{Project: "site", Path: "-i"},
		{Project: "site", Path: "a\nb"},
		{Project: "site", Path: "h", CacheTimeout: 10},
		{Project: "site", Path: "h", UpdateOnLaunch: true, CacheTimeout: -1},
		{Project: "site", Path: "h", UpdateOnLaunch: true, CacheTimeout: 1e9},
		{Project: "site", Path: "h", LastUpdateJob: "job/../x"},
	}
	for _, s := range bad {
		if err := s.Validate(); err == nil {
			t.Errorf("%+v was accepted", s)
		}
	}
}

// TestSetSource: a source is set on a static inventory, kept across an
// import, removed; a smart inventory cannot have one; a missing inventory
// is reported as such.
func TestSetSource(t *testing.T) {
	s := newTestStore(t, Config{})
	ctx := ctxT(t)
	if _, _, err := s.Import(ctx, "static", mustParse(t, generated(3, 1))); err != nil {
		t.Fatal(err)
	}
	src := &Source{Project: "site", Path: "hosts.yml", UpdateOnLaunch: true}
	if _, err := s.SetSource(ctx, "static", src); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Import(ctx, "static", mustParse(t, generated(5, 1))); err != nil {
		t.Fatal(err)
	}
	inv, _, err := s.Get(ctx, "static")
	if err != nil || inv.Source == nil || *inv.Source != *src || inv.Snapshot.Hosts != 5 {
		t.Fatalf("after an import: %+v %v", inv, err)
	}
	if err := s.Create(ctx, &Inventory{Name: "smart", Kind: Smart, Filter: &Filter{Sources: []string{"static"}}}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetSource(ctx, "smart", src); !errors.Is(err, ErrInvalid) {
		t.Errorf("a source on a smart inventory: %v", err)
	}
	if _, err := s.SetSource(ctx, "none", src); !errors.Is(err, ErrNotFound) {
		t.Errorf("a source on a missing inventory: %v", err)
	}
	if inv, err := s.SetSource(ctx, "static", nil); err != nil || inv.Source != nil {
		t.Fatalf("remove: %+v %v", inv, err)
	}
}
