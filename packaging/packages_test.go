package packaging_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// packageVersion is version.sh's answer for buildVersion, with the
// release nfpm adds.
const packageVersion = "1.2.3+4.gabc1234-1"

// shipped is what both packages must hold, whatever their unit directory.
var shipped = []struct {
	path, mode, owner string
	config            bool
}{
	{"/usr/bin/jobengine", "-rwxr-xr-x", "root/root", false},
	{"/usr/libexec/jobengine/actions", "drwxr-xr-x", "root/root", false},
	{"/usr/libexec/jobengine/actions/hello", "-rwxr-xr-x", "root/root", false},
	{"/etc/default/jobengine-executor", "-rw-r-----", "root/root", true},
	{"/etc/default/jobengine-distributor", "-rw-r-----", "root/root", true},
	{"/etc/jobengine/distributors.d", "drwxr-xr-x", "root/root", false},
	{"/etc/jobengine/distributors.d/dummy.yaml.example", "-rw-r--r--", "root/root", true},
	{"/var/log/jobengine", "drwxr-x---", "jobengine/jobengine", false},
	{"/var/lib/jobengine", "drwxr-x---", "jobengine/jobengine", false},
	{"/usr/share/doc/jobengine/operations.md", "-rw-r--r--", "root/root", false},
}

// unitDirs is where each packager puts the units.
var unitDirs = map[string]string{"deb": "/lib/systemd/system", "rpm": "/usr/lib/systemd/system"}

// scriptNames maps the install scripts to the names dpkg and rpm give them.
var scriptNames = []struct{ file, deb, rpm string }{
	{"preinstall.sh", "preinst", "preinstall scriptlet"},
	{"postinstall.sh", "postinst", "postinstall scriptlet"},
	{"preremove.sh", "prerm", "preuninstall scriptlet"},
	{"postremove.sh", "postrm", "postuninstall scriptlet"},
}

// TestPackages builds the .deb and the .rpm once with packaging/build.sh,
// checks their contents and scripts, and installs, reinstalls and purges
// the .deb on this machine.
func TestPackages(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: building and installing packages takes a while")
	}
	needTool(t, "dpkg-deb")
	bin, plugin := binaries(t)

	dist := t.TempDir()
	cmd := exec.Command(filepath.Join(repoRoot, "packaging/build.sh"), buildVersion)
	cmd.Env = append(cmd.Environ(), "DIST="+dist, "JOBENGINE_BIN="+bin, "JOBENGINE_PLUGIN="+plugin)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if strings.Contains(stderr.String(), "could not install nfpm") && networkError(stderr.String()) {
			t.Skipf("nfpm could not be fetched (no network or module proxy):\n%s", stderr.String())
		}
		t.Fatalf("build.sh: %v\n%s", err, stderr.String())
	}
	var deb, rpm string
	for _, p := range strings.Fields(string(out)) {
		switch filepath.Ext(p) {
		case ".deb":
			deb = p
		case ".rpm":
			rpm = p
		}
	}
	if deb == "" || rpm == "" || filepath.Dir(deb) != dist || filepath.Dir(rpm) != dist {
		t.Fatalf("build.sh printed %q, want a .deb and a .rpm in %s", out, dist)
	}

	t.Run("deb contents", func(t *testing.T) { checkDeb(t, deb) })
	t.Run("rpm contents", func(t *testing.T) { checkRPM(t, rpm) })
	t.Run("deb install and purge", func(t *testing.T) { installDeb(t, deb) })
}

// networkError says whether go's output is about fetching modules.
func networkError(s string) bool {
	for _, m := range []string{"dial tcp", "no such host", "connection refused", "i/o timeout", "proxy", "403 Forbidden", "TLS handshake", "network is unreachable"} {
		if strings.Contains(s, m) {
			return true
		}
	}
	return false
}

// listing is a package's file list: path -> "mode owner/group".
type listing map[string]string

func (l listing) check(t *testing.T, kind string) {
	t.Helper()
	for _, f := range shipped {
		got, ok := l[f.path]
		if !ok {
			t.Errorf("%s: %s is missing", kind, f.path)
			continue
		}
		if want := f.mode + " " + f.owner; got != want {
			t.Errorf("%s: %s is %q, want %q", kind, f.path, got, want)
		}
	}
	for _, u := range units {
		for k, dir := range unitDirs {
			_, ok := l[dir+"/"+u.file]
			if want := k == kind; ok != want {
				t.Errorf("%s: %s/%s present: %v, want %v", kind, dir, u.file, ok, want)
			}
		}
	}
}

func checkDeb(t *testing.T, deb string) {
	if got := strings.TrimSpace(mustRun(t, time.Minute, "dpkg-deb", "-f", deb, "Version")); got != packageVersion {
		t.Errorf("deb Version %q, want %q", got, packageVersion)
	}
	if got := strings.TrimSpace(mustRun(t, time.Minute, "dpkg-deb", "-f", deb, "Package")); got != "jobengine" {
		t.Errorf("deb Package %q", got)
	}

	// dpkg-deb -c: "drwxr-x--- jobengine/jobengine 0 2026-01-02 10:00 ./var/log/jobengine/"
	l := listing{}
	for _, line := range strings.Split(mustRun(t, time.Minute, "dpkg-deb", "-c", deb), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 {
			continue
		}
		p := strings.TrimSuffix(strings.TrimPrefix(f[5], "."), "/")
		l[p] = f[0] + " " + f[1]
	}
	l.check(t, "deb")

	// Config files are conffiles: dpkg keeps the administrator's copy.
	var conf []string
	for _, f := range shipped {
		if f.config {
			conf = append(conf, f.path)
		}
	}
	got := strings.Fields(mustRun(t, time.Minute, "dpkg-deb", "-I", deb, "conffiles"))
	sort.Strings(got)
	sort.Strings(conf)
	if strings.Join(got, " ") != strings.Join(conf, " ") {
		t.Errorf("conffiles %q, want %q", got, conf)
	}

	// The maintainer scripts are ours, unchanged.
	ctl := t.TempDir()
	mustRun(t, time.Minute, "dpkg-deb", "-e", deb, ctl)
	for _, s := range scriptNames {
		want, err := os.ReadFile(filepath.Join(repoRoot, "packaging/scripts", s.file))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(ctl, s.deb))
		if err != nil || string(got) != string(want) {
			t.Errorf("deb %s is not packaging/scripts/%s (%v)", s.deb, s.file, err)
		}
	}
}

func checkRPM(t *testing.T, rpm string) {
	if _, err := exec.LookPath("rpm"); err != nil {
		needRoot(t, "installing rpm with scripts/deps.sh rpm")
		mustRun(t, 10*time.Minute, filepath.Join(repoRoot, "scripts/deps.sh"), "rpm")
	}
	if got := mustRun(t, time.Minute, "rpm", "-qp", "--qf", "%{NAME} %{VERSION}-%{RELEASE}", rpm); got != "jobengine "+packageVersion {
		t.Errorf("rpm is %q, want jobengine %s", got, packageVersion)
	}

	// The plain listing first, then modes, owners and flags of each file.
	plain := mustRun(t, time.Minute, "rpm", "-qpl", rpm)
	l := listing{}
	flags := map[string]string{}
	qf := `[%{FILEMODES:perms} %{FILEUSERNAME}/%{FILEGROUPNAME} %{FILEFLAGS:fflags}_ %{FILENAMES}\n]`
	for _, line := range strings.Split(mustRun(t, time.Minute, "rpm", "-qp", "--qf", qf, rpm), "\n") {
		f := strings.Fields(line)
		if len(f) != 4 {
			continue
		}
		if !strings.Contains(plain, f[3]+"\n") {
			t.Errorf("rpm -qpl does not list %s", f[3])
		}
		l[f[3]] = f[0] + " " + f[1]
		flags[f[3]] = strings.TrimSuffix(f[2], "_")
	}
	l.check(t, "rpm")
	for _, f := range shipped {
		// c: config, n: noreplace (a changed file is kept, the new one
		// written as .rpmnew).
		if got := flags[f.path]; f.config != (got == "cn") {
			t.Errorf("rpm %s flags %q, config|noreplace wanted: %v", f.path, got, f.config)
		}
	}

	// rpm -qp --scripts: "preinstall scriptlet (using /bin/sh):" then the script.
	scripts := mustRun(t, time.Minute, "rpm", "-qp", "--scripts", rpm)
	for _, s := range scriptNames {
		want, err := os.ReadFile(filepath.Join(repoRoot, "packaging/scripts", s.file))
		if err != nil {
			t.Fatal(err)
		}
		re := regexp.MustCompile(`(?m)^` + s.rpm + ` \(using /bin/sh\):\n`)
		loc := re.FindStringIndex(scripts)
		if loc == nil || !strings.HasPrefix(scripts[loc[1]:], strings.TrimRight(string(want), "\n")) {
			t.Errorf("rpm %s is not packaging/scripts/%s; rpm --scripts:\n%s", s.rpm, s.file, scripts)
		}
	}
}

// installDeb installs the .deb for real, checks the result, reinstalls it
// over a changed setting, purges it, and leaves the machine as it found it.
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
	// The plugin is a go-plugin binary: run alone, it says so and exits 1.
	if _, errOut, code := run(t, time.Minute, nil, "/usr/libexec/jobengine/actions/hello"); code != 1 || !strings.Contains(errOut, "This binary is a plugin") {
		t.Errorf("installed plugin run alone: exit %d, stderr %q", code, errOut)
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
	for _, d := range []string{"/var/log/jobengine", "/var/lib/jobengine"} {
		if got := strings.TrimSpace(mustRun(t, time.Minute, "stat", "-c", "%A %U/%G", d)); got != "drwxr-x--- jobengine/jobengine" {
			t.Errorf("%s: %s", d, got)
		}
	}
	// The daemons' user can run the binary.
	if got := mustRun(t, time.Minute, "runuser", "-u", "jobengine", "--", "/usr/bin/jobengine", "version"); !strings.Contains(got, buildVersion) {
		t.Errorf("jobengine version as jobengine: %q", got)
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

	// Enabled units are disabled on removal; systemctl enables them
	// without a running systemd too.
	systemctl, _ := exec.LookPath("systemctl")
	if systemctl != "" {
		mustRun(t, time.Minute, systemctl, "enable", units[0].verifyAs, units[1].verifyAs)
		t.Cleanup(func() { run(t, time.Minute, nil, systemctl, "disable", units[0].verifyAs, units[1].verifyAs) })
	}

	// Purge removes files, settings, logs and state; the user stays.
	dpkg("--purge", "jobengine")
	if systemctl != "" {
		links, _ := filepath.Glob("/etc/systemd/system/*/jobengine-*")
		if len(links) != 0 {
			t.Errorf("after dpkg --purge, the units are still enabled: %v", links)
		}
	}
	for _, p := range []string{"/usr/bin/jobengine", "/usr/libexec/jobengine", "/etc/default/jobengine-executor",
		"/etc/default/jobengine-distributor", "/etc/jobengine", "/var/log/jobengine", "/var/lib/jobengine",
		unitDirs["deb"] + "/jobengine-executor.service", unitDirs["deb"] + "/jobengine-distributor@.service"} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("after dpkg --purge, %s is still there (%v)", p, err)
		}
	}
	if _, _, code := run(t, time.Minute, nil, "getent", "passwd", "jobengine"); code != 0 {
		t.Errorf("dpkg --purge removed the jobengine user; it is documented to stay")
	}
}

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}
