package access

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jobengine/jobengine/engine/configstore"
	"github.com/jobengine/jobengine/engine/zkconn"
	"github.com/jobengine/jobengine/engine/zkserver"
	"github.com/jobengine/jobengine/internal/testing/zktest"
)

var testZK *zkserver.Cluster

func TestMain(m *testing.M) {
	os.Exit(zktest.RunTests(m, zkserver.Options{}, &testZK))
}

var rootSeq atomic.Int64

func newStore(t *testing.T) (*Store, *zkconn.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	conn, err := zkconn.Dial(ctx, zkconn.Config{Hosts: testZK.Addrs(), Root: fmt.Sprintf("/a%d", rootSeq.Add(1)), SessionTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	return NewStore(conn, nil), conn
}

func TestPasswordHash(t *testing.T) {
	h, err := HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q is not argon2id with the default parameters", h)
	}
	if !CheckPassword(h, "correct horse") || CheckPassword(h, "correct horsE") {
		t.Fatal("the password check is wrong")
	}
	h2, _ := HashPassword("correct horse")
	if h2 == h {
		t.Fatal("two hashes of one password are equal: no salt")
	}
	for _, bad := range []string{"", "$argon2i$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5", strings.Replace(h, "m=19456", "m=99999999", 1), strings.Replace(h, "t=2", "t=0", 1)} {
		if ValidHash(bad) == nil || CheckPassword(bad, "correct horse") {
			t.Errorf("hash %q accepted", bad)
		}
	}
	if _, err := HashPassword("short"); !errors.Is(err, configstore.ErrInvalid) {
		t.Errorf("a short password: %v", err)
	}
}

func TestUsersTokensSessions(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	if _, err := s.CreateUser(ctx, NewUser{Name: "alice", Password: "alice-password", Role: SystemAdmin}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateUser(ctx, NewUser{Name: "alice", Password: "whatever-else"}); !errors.Is(err, configstore.ErrExists) {
		t.Fatalf("second alice: %v", err)
	}
	if _, err := s.CreateUser(ctx, NewUser{Name: "bob", Password: "short"}); !errors.Is(err, configstore.ErrInvalid) {
		t.Fatalf("short password: %v", err)
	}
	if _, _, err := s.GetUser(ctx, "bob"); !errors.Is(err, configstore.ErrNotFound) {
		t.Fatalf("bob was written despite a bad password: %v", err)
	}
	if _, err := s.Authenticate(ctx, "alice", "alice-password"); err != nil {
		t.Fatal(err)
	}
	for _, c := range [][2]string{{"alice", "wrong-password"}, {"nobody", "alice-password"}, {"", "x"}} {
		if _, err := s.Authenticate(ctx, c[0], c[1]); !errors.Is(err, ErrBadCredentials) {
			t.Errorf("%v: %v", c, err)
		}
	}
	tok, secret, err := s.CreateToken(ctx, "alice", "ci", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(tok.SecretSHA256, secret) || !LooksLikeToken(secret) {
		t.Fatalf("token %q, stored %+v", secret, tok)
	}
	if _, u, err := s.AuthenticateToken(ctx, secret); err != nil || u.Name != "alice" {
		t.Fatalf("token: %v %v", u, err)
	}
	if _, _, err := s.AuthenticateToken(ctx, secret[:len(secret)-1]+"x"); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("a wrong secret: %v", err)
	}
	// Expiry: the clock moves past it; the token fails and is deleted.
	s.SetClock(func() time.Time { return time.Now().Add(2 * time.Hour) })
	if _, _, err := s.AuthenticateToken(ctx, secret); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("an expired token: %v", err)
	}
	if _, err := s.GetToken(ctx, tok.ID); !errors.Is(err, configstore.ErrNotFound) {
		t.Errorf("the expired token is still stored: %v", err)
	}
	s.SetClock(time.Now)

	ss, cookie, csrf, err := s.CreateSession(ctx, "alice", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := s.AuthenticateSession(ctx, cookie)
	if err != nil || got.ID != ss.ID || !got.CheckCSRF(csrf) || got.CheckCSRF(csrf+"x") || got.CheckCSRF("") {
		t.Fatalf("session: %+v %v", got, err)
	}
	if err := s.EndSession(ctx, ss.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.AuthenticateSession(ctx, cookie); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("an ended session: %v", err)
	}

	// Disabling a user refuses its password and tokens.
	_, secret2, err := s.CreateToken(ctx, "alice", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateUser(ctx, "alice", func(u *User) error { u.Disabled = true; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.AuthenticateToken(ctx, secret2); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("a disabled user's token: %v", err)
	}
	if _, err := s.Authenticate(ctx, "alice", "alice-password"); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("a disabled user's password: %v", err)
	}
}

func TestGrantsAndPrincipal(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	for _, n := range []string{"carol", "dave"} {
		if _, err := s.CreateUser(ctx, NewUser{Name: n, Password: n + "-password"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateTeam(ctx, &Team{Name: "ops", Members: []string{"dave"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTeam(ctx, &Team{Name: "ghosts", Members: []string{"nobody"}}); !errors.Is(err, configstore.ErrInvalid) {
		t.Fatalf("a team of unknown users: %v", err)
	}
	grants := []Grant{
		{SubjectKind: SubjectUser, Subject: "carol", Kind: KindTemplate, Object: "web", Role: RoleExecute},
		{SubjectKind: SubjectTeam, Subject: "ops", Kind: KindInventory, Object: "prod", Role: RoleAdmin},
		{SubjectKind: SubjectUser, Subject: "dave", Kind: KindTemplate, Object: "web", Role: RoleRead},
	}
	for _, g := range grants {
		if err := s.AddGrant(ctx, g); err != nil {
			t.Fatal(err)
		}
		if err := s.AddGrant(ctx, g); err != nil {
			t.Fatalf("granting again: %v", err)
		}
	}
	if err := s.AddGrant(ctx, Grant{SubjectKind: SubjectUser, Subject: "nobody", Kind: KindTemplate, Object: "web", Role: RoleRead}); !errors.Is(err, configstore.ErrInvalid) {
		t.Fatalf("a grant to nobody: %v", err)
	}
	list, err := s.ListGrants(ctx, GrantFilter{})
	if err != nil || len(list) != 3 {
		t.Fatalf("grants: %v %v", list, err)
	}
	g, err := ParseGrantID(grants[0].ID())
	if err != nil || g != grants[0] {
		t.Fatalf("grant id round trip: %v %v", g, err)
	}

	u, _, _ := s.GetUser(ctx, "carol")
	p, err := s.Principal(ctx, u, "basic")
	if err != nil {
		t.Fatal(err)
	}
	if !p.Can(KindTemplate, "web", RoleRead) || !p.Can(KindTemplate, "web", RoleExecute) || p.Can(KindTemplate, "web", RoleAdmin) ||
		p.Can(KindTemplate, "db", RoleRead) || p.Can(KindInventory, "prod", RoleRead) {
		t.Errorf("carol's roles are wrong: %+v", p)
	}
	u, _, _ = s.GetUser(ctx, "dave")
	p, err = s.Principal(ctx, u, "basic")
	if err != nil {
		t.Fatal(err)
	}
	if !p.Can(KindInventory, "prod", RoleAdmin) || !p.InTeam("ops") || p.Can(KindTemplate, "web", RoleExecute) {
		t.Errorf("dave's roles are wrong: %+v", p)
	}

	// Deleting the object takes its roles back; deleting a user takes its
	// grants, tokens and memberships.
	if err := s.ForgetObject(ctx, KindTemplate, "web"); err != nil {
		t.Fatal(err)
	}
	if list, _ := s.ListGrants(ctx, GrantFilter{Kind: KindTemplate}); len(list) != 0 {
		t.Errorf("grants on a deleted template remain: %v", list)
	}
	if _, _, err := s.CreateToken(ctx, "dave", "", 0); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteUser(ctx, "dave"); err != nil {
		t.Fatal(err)
	}
	if toks, _ := s.ListTokens(ctx, "dave"); len(toks) != 0 {
		t.Errorf("dave's tokens remain: %v", toks)
	}
	if team, _, _ := s.GetTeam(ctx, "ops"); team.HasMember("dave") {
		t.Errorf("dave is still in ops")
	}
	if err := s.RemoveGrant(ctx, grants[0]); !errors.Is(err, configstore.ErrNotFound) {
		t.Errorf("removing a grant that is gone: %v", err)
	}
}

// TestPurgeExpired deletes expired sessions and tokens and keeps the
// others.
func TestPurgeExpired(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	if _, err := s.CreateUser(ctx, NewUser{Name: "erin", Password: "erin-password"}); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := s.CreateSession(ctx, "erin", time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.CreateToken(ctx, "erin", "short", time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.CreateToken(ctx, "erin", "long", 0); err != nil {
		t.Fatal(err)
	}
	if n, err := s.PurgeExpired(ctx); err != nil || n != 0 {
		t.Fatalf("nothing expired yet: %d %v", n, err)
	}
	s.SetClock(func() time.Time { return time.Now().Add(time.Hour) })
	if n, err := s.PurgeExpired(ctx); err != nil || n != 2 {
		t.Fatalf("purged %d, %v; want the session and the short token", n, err)
	}
	if toks, _ := s.ListTokens(ctx, "erin"); len(toks) != 1 || toks[0].Description != "long" {
		t.Fatalf("tokens left: %+v", toks)
	}
}
