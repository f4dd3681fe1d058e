package packaging_test

import (
	"archive/tar"
	"compress/gzip"
	"debug/elf"
	"errors"
	"io"
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

// shipped is what the packages hold: kind "" in both, "deb" or "rpm" in
// one. config marks configuration files (conffiles, %config(noreplace)),
// doc and license the rpm's %doc and %license files.
var shipped = []struct {
	path, mode, owner, kind string
	config, doc, license    bool
}{
	{path: "/usr/bin/jobengine", mode: "-rwxr-xr-x", owner: "root/root"},
	{path: "/usr/libexec/jobengine/actions", mode: "drwxr-xr-x", owner: "root/root"},
	{path: "/usr/libexec/jobengine/examples/hello", mode: "-rwxr-xr-x", owner: "root/root"},
	{path: "/etc/default/jobengine-executor", mode: "-rw-r-----", owner: "root/root", kind: "deb", config: true},
	{path: "/etc/default/jobengine-distributor", mode: "-rw-r-----", owner: "root/root", kind: "deb", config: true},
	{path: "/etc/default/jobengine-controller", mode: "-rw-r-----", owner: "root/root", kind: "deb", config: true},
	{path: "/etc/sysconfig/jobengine-executor", mode: "-rw-r-----", owner: "root/root", kind: "rpm", config: true},
	{path: "/etc/sysconfig/jobengine-distributor", mode: "-rw-r-----", owner: "root/root", kind: "rpm", config: true},
	{path: "/etc/sysconfig/jobengine-controller", mode: "-rw-r-----", owner: "root/root", kind: "rpm", config: true},
	{path: "/etc/jobengine/distributors.d", mode: "drwxr-xr-x", owner: "root/root"},
	// The deb's postinst makes these (dpkg ships directories as root's).
	{path: "/var/log/jobengine", mode: "drwxr-x---", owner: "jobengine/jobengine", kind: "rpm"},
	{path: "/var/lib/jobengine", mode: "drwxr-x---", owner: "jobengine/jobengine", kind: "rpm"},
	{path: "/usr/share/doc/jobengine/operations.md", mode: "-rw-r--r--", owner: "root/root", doc: true},
	{path: "/usr/share/doc/jobengine/examples/distributors.d/dummy.yaml.example", mode: "-rw-r--r--", owner: "root/root", doc: true},
	{path: "/usr/share/doc/jobengine/copyright", mode: "-rw-r--r--", owner: "root/root", kind: "deb"},
	{path: "/usr/share/doc/jobengine/changelog.Debian.gz", mode: "-rw-r--r--", owner: "root/root", kind: "deb"},
	{path: "/usr/share/lintian/overrides/jobengine", mode: "-rw-r--r--", owner: "root/root", kind: "deb"},
	{path: "/usr/share/licenses/jobengine/LICENSE", mode: "-rw-r--r--", owner: "root/root", kind: "rpm", license: true},
	{path: "/usr/share/licenses/jobengine/copyright", mode: "-rw-r--r--", owner: "root/root", kind: "rpm", license: true},
	{path: "/usr/share/man/man1/jobengine.1.gz", mode: "-rw-r--r--", owner: "root/root", doc: true},
	{path: "/usr/share/bash-completion/completions/jobengine", mode: "-rw-r--r--", owner: "root/root"},
	{path: "/usr/share/zsh/vendor-completions/_jobengine", mode: "-rw-r--r--", owner: "root/root", kind: "deb"},
	{path: "/usr/share/zsh/site-functions/_jobengine", mode: "-rw-r--r--", owner: "root/root", kind: "rpm"},
	{path: "/usr/share/fish/vendor_completions.d/jobengine.fish", mode: "-rw-r--r--", owner: "root/root"},
}

// notShipped are paths a production install must not have: a plugin in
// the directory the executor scans, an example among the settings.
var notShipped = []string{
	"/usr/libexec/jobengine/actions/hello",
	"/etc/jobengine/distributors.d/dummy.yaml.example",
}

// unitDirs is where each packager puts the units.
var unitDirs = map[string]string{"deb": "/lib/systemd/system", "rpm": "/usr/lib/systemd/system"}

// scriptNames maps the install scripts to the names dpkg and rpm give them.
var scriptNames = []struct{ deb, rpm, debName, rpmName string }{
	{"packaging/scripts/preinstall.sh", "packaging/scripts/preinstall.sh", "preinst", "preinstall scriptlet"},
	{"packaging/scripts/deb/postinst", "packaging/scripts/rpm/post", "postinst", "postinstall scriptlet"},
	{"packaging/scripts/deb/prerm", "packaging/scripts/rpm/preun", "prerm", "preuninstall scriptlet"},
	{"packaging/scripts/deb/postrm", "packaging/scripts/rpm/postun", "postrm", "postuninstall scriptlet"},
}

// TestPackages builds the .deb and the .rpm once with packaging/build.sh,
// checks their contents, scripts and binaries, runs lintian on the .deb,
// installs the .rpm into a scratch root, and installs, reinstalls, removes
// and purges the .deb on this machine.
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
	t.Run("deb binaries", func(t *testing.T) { checkBinaries(t, debFiles(t, deb)) })
	t.Run("lintian", func(t *testing.T) { checkLintian(t, deb) })
	t.Run("rpm contents", func(t *testing.T) { checkRPM(t, rpm) })
	t.Run("rpm in a scratch root", func(t *testing.T) { installRPMRoot(t, rpm) })
	t.Run("deb install, remove and purge", func(t *testing.T) { installDeb(t, deb) })
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
		if want := f.kind == "" || f.kind == kind; ok != want {
			t.Errorf("%s: %s present: %v, want %v", kind, f.path, ok, want)
			continue
		}
		if want := f.mode + " " + f.owner; ok && got != want {
			t.Errorf("%s: %s is %q, want %q", kind, f.path, got, want)
		}
	}
	for _, p := range notShipped {
		if _, ok := l[p]; ok {
			t.Errorf("%s: ships %s", kind, p)
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
	// Static binaries: no libc to depend on; passwd for useradd.
	if got := strings.TrimSpace(mustRun(t, time.Minute, "dpkg-deb", "-f", deb, "Depends")); got != "passwd" {
		t.Errorf("deb Depends %q, want passwd", got)
	}
	if got := strings.TrimSpace(mustRun(t, time.Minute, "dpkg-deb", "-f", deb, "Maintainer")); !regexp.MustCompile(`^[^<>]+ <[^@\s]+@[^@\s]+\.[a-z]+>$`).MatchString(got) || strings.Contains(got, "localhost") {
		t.Errorf("deb Maintainer %q is not a name and an address", got)
	} else if contact := projectContact(t); got != contact {
		t.Errorf("deb Maintainer %q is not the project's address %q (packaging/copyright's Upstream-Contact)", got, contact)
	}

	// dpkg-deb -c: "drwxr-xr-x root/root 0 2026-01-02 10:00 ./usr/bin/"
	l := listing{}
	for _, line := range strings.Split(mustRun(t, time.Minute, "dpkg-deb", "-c", deb), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 {
			continue
		}
		p := strings.TrimSuffix(strings.TrimPrefix(f[5], "."), "/")
		l[p] = f[0] + " " + strings.ReplaceAll(f[1], "0/0", "root/root")
	}
	l.check(t, "deb")

	// Config files are conffiles: dpkg keeps the administrator's copy.
	var conf []string
	for _, f := range shipped {
		if f.config && f.kind != "rpm" {
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
		want, err := os.ReadFile(filepath.Join(repoRoot, s.deb))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(ctl, s.debName))
		if err != nil || string(got) != string(want) {
			t.Errorf("deb %s is not %s (%v)", s.debName, s.deb, err)
		}
	}

	// The changelog names this version, signed by the maintainer.
	files := debFiles(t, deb)
	changelog := gunzip(t, files["/usr/share/doc/jobengine/changelog.Debian.gz"])
	if !strings.HasPrefix(changelog, "jobengine ("+packageVersion+") ") || !strings.Contains(changelog, buildVersion) {
		t.Errorf("changelog.Debian.gz does not describe %s:\n%s", packageVersion, changelog)
	}
	// What build.sh generated with the binary, installed where the shells
	// and man look.
	bin, _ := binaries(t)
	for path, args := range map[string][]string{
		"/usr/share/bash-completion/completions/jobengine":    {"completion", "bash"},
		"/usr/share/zsh/vendor-completions/_jobengine":        {"completion", "zsh"},
		"/usr/share/fish/vendor_completions.d/jobengine.fish": {"completion", "fish"},
	} {
		if want := mustRun(t, time.Minute, bin, args...); string(files[path]) != want {
			t.Errorf("%s is not what jobengine %s prints", path, strings.Join(args, " "))
		}
	}
	if want, got := mustRun(t, time.Minute, bin, "man"), gunzip(t, files["/usr/share/man/man1/jobengine.1.gz"]); got != want {
		t.Errorf("jobengine.1.gz is not what jobengine man prints")
	}
}

// debFiles reads the regular files of a .deb: path -> content.
func debFiles(t *testing.T, deb string) map[string][]byte {
	t.Helper()
	cmd := exec.Command("dpkg-deb", "--fsys-tarfile", deb)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	tr := tar.NewReader(out)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("reading %s: %v", deb, err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[strings.TrimPrefix(h.Name, ".")] = b
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("dpkg-deb --fsys-tarfile: %v", err)
	}
	return files
}

func gunzip(t *testing.T, b []byte) string {
	t.Helper()
	r, err := gzip.NewReader(strings.NewReader(string(b)))
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	return string(out)
}

// checkBinaries reads the ELF headers of the shipped binaries: no shared
// library needed (so no libc version either: EL8's glibc 2.28 runs them),
// position-independent, stripped.
func checkBinaries(t *testing.T, files map[string][]byte) {
	for _, p := range []string{"/usr/bin/jobengine", "/usr/libexec/jobengine/examples/hello"} {
		f, err := elf.NewFile(strings.NewReader(string(files[p])))
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if libs, err := f.ImportedLibraries(); err != nil || len(libs) != 0 {
			t.Errorf("%s needs shared libraries %q (%v): it must be built with CGO_ENABLED=0", p, libs, err)
		}
		if syms, err := f.ImportedSymbols(); err != nil || len(syms) != 0 {
			t.Errorf("%s imports symbols %v (%v)", p, syms, err)
		}
		if f.Type != elf.ET_DYN {
			t.Errorf("%s is of type %s, want a position-independent executable (ET_DYN)", p, f.Type)
		}
		if f.Section(".symtab") != nil {
			t.Errorf("%s has a symbol table: it must be stripped (-ldflags '-s -w')", p)
		}
		f.Close()
	}
}

// checkLintian runs lintian on the .deb: no error, no warning, and every
// override in packaging/lintian-overrides still needed.
func checkLintian(t *testing.T, deb string) {
	if _, err := exec.LookPath("lintian"); err != nil {
		needRoot(t, "installing lintian with scripts/deps.sh lintian")
		mustRun(t, 10*time.Minute, filepath.Join(repoRoot, "scripts/deps.sh"), "lintian")
	}
	// With --show-overrides, lintian's --fail-on would count the
	// overridden tags too: the lines are judged here instead.
	out, errOut, code := run(t, 5*time.Minute, nil, "lintian", "--fail-on", "none", "--tag-display-limit", "0", "--show-overrides", deb)
	var bad, overridden []string
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(line, "E: "), strings.HasPrefix(line, "W: "):
			bad = append(bad, line)
		case strings.HasPrefix(line, "O: "):
			overridden = append(overridden, strings.TrimPrefix(line, "O: "))
		}
	}
	if code != 0 || len(bad) != 0 {
		t.Errorf("lintian: exit %d, errors and warnings:\n%s\n%s", code, strings.Join(bad, "\n"), errOut)
	}
	b, err := os.ReadFile(filepath.Join(repoRoot, "packaging/lintian-overrides"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		found := false
		for _, o := range overridden {
			found = found || o == line
		}
		if !found {
			t.Errorf("lintian no longer raises the overridden %q: remove it from packaging/lintian-overrides", line)
		}
	}
}

func checkRPM(t *testing.T, rpm string) {
	needRPM(t)
	if got := mustRun(t, time.Minute, "rpm", "-qp", "--qf", "%{NAME} %{VERSION}-%{RELEASE}", rpm); got != "jobengine "+packageVersion {
		t.Errorf("rpm is %q, want jobengine %s", got, packageVersion)
	}
	// jobengine's license and those of the modules compiled in.
	if got := mustRun(t, time.Minute, "rpm", "-qp", "--qf", "%{LICENSE}", rpm); !strings.HasPrefix(got, "Apache-2.0") || !strings.Contains(got, "MPL-2.0") {
		t.Errorf("rpm License %q", got)
	}
	// Static binaries: nothing from glibc, only what the scriptlets run.
	var requires []string
	for _, r := range strings.Split(strings.TrimSpace(mustRun(t, time.Minute, "rpm", "-qpR", rpm)), "\n") {
		if !strings.HasPrefix(r, "rpmlib(") {
			requires = append(requires, r)
		}
	}
	if got := strings.Join(requires, " "); got != "shadow-utils systemd" {
		t.Errorf("rpm Requires %q, want shadow-utils systemd", got)
	}
	if got := mustRun(t, time.Minute, "rpm", "-qp", "--changelog", rpm); !strings.Contains(got, "- "+packageVersion+"\n") {
		t.Errorf("rpm changelog does not name %s:\n%s", packageVersion, got)
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
		if f.kind == "deb" {
			continue
		}
		// c: config, n: noreplace (a changed file is kept, the new one
		// written as .rpmnew); d: %doc; l: %license.
		want := ""
		switch {
		case f.config:
			want = "cn"
		case f.doc:
			want = "d"
		case f.license:
			want = "l"
		}
		if got := flags[f.path]; got != want {
			t.Errorf("rpm %s flags %q, want %q", f.path, got, want)
		}
	}

	// rpm -qp --scripts: "preinstall scriptlet (using /bin/sh):" then the script.
	scripts := mustRun(t, time.Minute, "rpm", "-qp", "--scripts", rpm)
	for _, s := range scriptNames {
		want, err := os.ReadFile(filepath.Join(repoRoot, s.rpm))
		if err != nil {
			t.Fatal(err)
		}
		re := regexp.MustCompile(`(?m)^` + s.rpmName + ` \(using /bin/sh\):\n`)
		loc := re.FindStringIndex(scripts)
		if loc == nil || !strings.HasPrefix(scripts[loc[1]:], strings.TrimRight(string(want), "\n")) {
			t.Errorf("rpm %s is not %s; rpm --scripts:\n%s", s.rpmName, s.rpm, scripts)
		}
	}
}

// needRPM installs rpm when it is missing and this test may.
func needRPM(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("rpm"); err != nil {
		needRoot(t, "installing rpm with scripts/deps.sh rpm")
		mustRun(t, 10*time.Minute, filepath.Join(repoRoot, "scripts/deps.sh"), "rpm")
	}
}
