package packaging_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	// The built-in actions register themselves on import.
	_ "github.com/jobengine/jobengine/actions"
	"github.com/jobengine/jobengine/engine/action"
)

// installDeb installs the .deb for real, checks the result, reinstalls it
// over a changed setting, removes it, installs it again, purges it, and
// leaves the machine as it found it. Without a running systemd (a
// container, CI) the scripts' start, stop and reload steps are skipped,
// as they are in a chroot; deb-systemd-helper's enable records and masks
// are checked.
func installDeb(t *testing.T, deb string) {
	needRoot(t, "dpkg -i")
	needTool(t, "dpkg")
	if _, _, code := run(t, time.Minute, nil, "dpkg-query", "-W", "jobengine"); code == 0 {
		t.Skip("a jobengine package is already installed on this machine; not replacing it")
	}
	_, _, code := run(t, time.Minute, nil, "getent", "passwd", "jobengine")
	userExisted := code == 0
	t.Cleanup(func() {
		run(t, 5*time.Minute, nil, "dpkg", "--purge", "jobengine")
		if !userExisted {
			run(t, time.Minute, nil, "userdel", "jobengine")
			run(t, time.Minute, nil, "groupdel", "jobengine")
		}
	})
	dpkg := func(args ...string) {
		t.Helper()
		cmd := exec.Command("dpkg", args...)
		cmd.Env = append(cmd.Environ(), "DEBIAN_FRONTEND=noninteractive")
		// stdin stays empty: a conffile question would fail, not hang.
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("dpkg %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}

	dpkg("-i", deb)
	if got := strings.TrimSpace(mustRun(t, time.Minute, "/usr/bin/jobengine", "version")); got != "jobengine "+buildVersion {
		t.Errorf("installed jobengine version: %q", got)
	}
	// The example plugin is a go-plugin binary: run alone, it says so and
	// exits 1. It is not in the plugin directory.
	if _, errOut, code := run(t, time.Minute, nil, "/usr/libexec/jobengine/examples/hello"); code != 1 || !strings.Contains(errOut, "This binary is a plugin") {
		t.Errorf("installed example plugin run alone: exit %d, stderr %q", code, errOut)
	}
	// A production install offers the production built-ins only: no
	// plugin in the plugin directory, no test action. Both are one step
	// away.
	prod := action.Builtins().Names()
	with := func(extra ...string) string {
		all := append(append([]string{}, prod...), extra...)
		sort.Strings(all)
		return strings.Join(all, " ")
	}
	if got := installedActions(t); strings.Join(got, " ") != with() {
		t.Errorf("the installed executor would offer %v; want the production built-ins %v until plugins are installed", got, prod)
	}
	if got := installedActions(t, "--plugin-dir", "/usr/libexec/jobengine/examples"); strings.Join(got, " ") != with("hello") {
		t.Errorf("with --plugin-dir /usr/libexec/jobengine/examples: %v, want %s", got, with("hello"))
	}
	if got := installedActions(t, "--enable-test-actions"); strings.Join(got, " ") != with("dummy_test_action", "echo", "fail", "sleep") {
		t.Errorf("with --enable-test-actions: %v, want the test actions too", got)
	}

	pw := strings.Split(strings.TrimSpace(mustRun(t, time.Minute, "getent", "passwd", "jobengine")), ":")
	if len(pw) != 7 || pw[5] != "/var/lib/jobengine" || !strings.HasSuffix(pw[6], "nologin") && pw[6] != "/bin/false" {
		t.Errorf("jobengine user %q: want home /var/lib/jobengine and no login shell", pw)
	}
	if !userExisted {
		if uid := pw[2]; len(uid) > 3 { // system ids are below 1000 on Debian
			t.Errorf("jobengine uid %s is not a system uid", uid)
		}
	}
	// postinst made the daemons' directories.
	for _, d := range []string{"/var/log/jobengine", "/var/lib/jobengine"} {
		if got := strings.TrimSpace(mustRun(t, time.Minute, "stat", "-c", "%A %U/%G", d)); got != "drwxr-x--- jobengine/jobengine" {
			t.Errorf("%s: %s", d, got)
		}
	}
	// The daemons' user can run the binary.
	if got := mustRun(t, time.Minute, "runuser", "-u", "jobengine", "--", "/usr/bin/jobengine", "version"); !strings.Contains(got, buildVersion) {
		t.Errorf("jobengine version as jobengine: %q", got)
	}
	// man finds the page.
	if manPath, err := exec.LookPath("man"); err == nil {
		if got := strings.TrimSpace(mustRun(t, time.Minute, manPath, "-w", "jobengine")); got != "/usr/share/man/man1/jobengine.1.gz" {
			t.Errorf("man -w jobengine: %q", got)
		}
	}

	// The installed units, where systemd finds them, with the installed binary.
	if analyze, err := exec.LookPath("systemd-analyze"); err == nil {
		for _, u := range units {
			out, errOut, code := run(t, time.Minute, nil, analyze, "verify", u.verifyAs)
			if code != 0 || strings.TrimSpace(errOut) != "" {
				t.Errorf("systemd-analyze verify installed %s: exit %d\n%s%s", u.verifyAs, code, errOut, out)
			}
		}
	}

	// deb-systemd-helper recorded the executor's unit without enabling it:
	// the daemons need ZooKeeper's address first.
	const dshState = "/var/lib/systemd/deb-systemd-helper-enabled/jobengine-executor.service.dsh-also"
	executorLink := "/etc/systemd/system/multi-user.target.wants/" + units[0].verifyAs
	demoLink := "/etc/systemd/system/multi-user.target.wants/" + units[1].verifyAs
	executorMask := "/etc/systemd/system/" + units[0].verifyAs
	if _, err := os.Stat(dshState); err != nil {
		t.Errorf("deb-systemd-helper has no record of the executor unit: %v", err)
	}
	if _, err := os.Lstat(executorLink); !os.IsNotExist(err) {
		t.Errorf("installing enabled the executor (%v)", err)
	}

	// Reinstalling keeps the user, and the administrator's settings.
	const setting = `DAEMON_ARGS="--threads 3"`
	appendFile(t, "/etc/default/jobengine-executor", "\n"+setting+"\n")
	appendFile(t, "/var/log/jobengine/executor.log", "a log line\n")
	dpkg("-i", deb)
	if b, _ := os.ReadFile("/etc/default/jobengine-executor"); !strings.Contains(string(b), setting) {
		t.Errorf("reinstalling replaced the changed /etc/default/jobengine-executor:\n%s", b)
	}
	if got := strings.Split(strings.TrimSpace(mustRun(t, time.Minute, "getent", "passwd", "jobengine")), ":"); strings.Join(got, ":") != strings.Join(pw, ":") {
		t.Errorf("reinstalling changed the user: %q, was %q", got, pw)
	}

	// The administrator enables units; systemctl does it without a running
	// systemd too. Removing keeps that (the executor masked meanwhile,
	// as Debian does), installing again brings it back.
	systemctl, _ := exec.LookPath("systemctl")
	if systemctl != "" {
		mustRun(t, time.Minute, systemctl, "enable", units[0].verifyAs, units[1].verifyAs)
		t.Cleanup(func() { run(t, time.Minute, nil, systemctl, "disable", units[0].verifyAs, units[1].verifyAs) })
		dpkg("--remove", "jobengine")
		if target, err := os.Readlink(executorMask); err != nil || target != "/dev/null" {
			t.Errorf("after dpkg --remove, the executor is not masked: %q, %v", target, err)
		}
		if _, err := os.Stat("/etc/default/jobengine-executor"); err != nil {
			t.Errorf("dpkg --remove removed a configuration file: %v", err)
		}
		dpkg("-i", deb)
		if _, err := os.Lstat(executorMask); !os.IsNotExist(err) {
			t.Errorf("installing again left the executor masked (%v)", err)
		}
		for _, l := range []string{executorLink, demoLink} {
			if _, err := os.Lstat(l); err != nil {
				t.Errorf("remove and install lost the administrator's enabling of %s: %v", filepath.Base(l), err)
			}
		}
	}

	// Purge removes files, settings, enabling, logs and state; the user stays.
	dpkg("--purge", "jobengine")
	links, _ := filepath.Glob("/etc/systemd/system/*/jobengine-*")
	if masks, _ := filepath.Glob("/etc/systemd/system/jobengine-*"); len(links)+len(masks) != 0 {
		t.Errorf("after dpkg --purge, units are still enabled or masked: %v %v", links, masks)
	}
	for _, p := range []string{"/usr/bin/jobengine", "/usr/libexec/jobengine", "/etc/default/jobengine-executor",
		"/etc/default/jobengine-distributor", "/etc/default/jobengine-controller", "/etc/jobengine", "/var/log/jobengine", "/var/lib/jobengine", dshState,
		"/usr/share/man/man1/jobengine.1.gz", "/usr/share/bash-completion/completions/jobengine",
		unitDirs["deb"] + "/jobengine-executor.service", unitDirs["deb"] + "/jobengine-distributor@.service",
		unitDirs["deb"] + "/jobengine-controller.service"} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("after dpkg --purge, %s is still there (%v)", p, err)
		}
	}
	if _, _, code := run(t, time.Minute, nil, "getent", "passwd", "jobengine"); code != 0 {
		t.Errorf("dpkg --purge removed the jobengine user; it is documented to stay")
	}
}

// installedActions lists the actions the installed binary's executor would
// offer, by name.
func installedActions(t *testing.T, args ...string) []string {
	t.Helper()
	out := mustRun(t, time.Minute, "/usr/bin/jobengine", append([]string{"actions", "list", "--json"}, args...)...)
	var got struct {
		Actions []struct {
			Name string `json:"name"`
		} `json:"actions"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("actions list --json: %v\n%s", err, out)
	}
	names := []string{}
	for _, a := range got.Actions {
		names = append(names, a.Name)
	}
	return names
}
