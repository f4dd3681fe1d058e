package packaging_test

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// scriptletTools are the programs the rpm's scriptlets run, copied with
// their libraries into the scratch root (rpm runs scriptlets chrooted).
var scriptletTools = []string{"sh", "getent", "groupadd", "useradd", "chown", "chmod", "systemctl", "nologin"}

// installRPMRoot installs the .rpm into a scratch root with `rpm --root`,
// scriptlets included, the way Red Hat's tools would on a host: %pre makes
// the user, %post applies the systemd preset policy (systemctl works on
// the root's files in a chroot), %preun disables the units. What cannot
// run there is what needs a running systemd (stopping daemons, reloading
// units, the note about daemons left on the old version): the scriptlets
// skip it when /run/systemd/system is missing, as in any chroot.
func installRPMRoot(t *testing.T, rpm string) {
	needRoot(t, "rpm --root runs the scriptlets chrooted into the root")
	needRPM(t)
	root := scratchRoot(t)
	rpmIn := func(args ...string) string {
		t.Helper()
		// rpm on Debian warns on stderr that it is not Debian's tool.
		return mustRun(t, 5*time.Minute, "rpm", append([]string{"--root", root}, args...)...)
	}
	inRoot := func(p string) string { return filepath.Join(root, p) }
	preset := func(name, text string) {
		t.Helper()
		dir := inRoot("/usr/lib/systemd/system-preset")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	executorLink := inRoot("/etc/systemd/system/multi-user.target.wants/jobengine-executor.service")
	demoLink := inRoot("/etc/systemd/system/multi-user.target.wants/jobengine-distributor@demo.service")

	rpmIn("--initdb")
	// Red Hat's policy: units are disabled unless a preset enables them.
	preset("99-default-disable.preset", "disable *\n")
	rpmIn("-i", "--nodeps", rpm)

	if got := rpmIn("-q", "--qf", "%{VERSION}-%{RELEASE}", "jobengine"); got != packageVersion {
		t.Errorf("rpm -q in the root: %q", got)
	}
	// %pre made a system user with no login shell.
	pw := rootUser(t, root)
	if pw == nil || pw[5] != "/var/lib/jobengine" || !strings.HasSuffix(pw[6], "nologin") {
		t.Fatalf("jobengine user in the root: %q", pw)
	}
	if uid, _ := strconv.Atoi(pw[2]); uid == 0 || uid >= 1000 {
		t.Errorf("jobengine uid %d is not a system uid", uid)
	}
	// rpm gave the directories to that user, and verifies them.
	for _, d := range []string{"/var/lib/jobengine", "/var/log/jobengine"} {
		st, err := os.Stat(inRoot(d))
		if err != nil {
			t.Fatal(err)
		}
		sys := st.Sys().(*syscall.Stat_t)
		if fmt.Sprint(sys.Uid) != pw[2] || fmt.Sprint(sys.Gid) != pw[3] || st.Mode().Perm() != 0o750 {
			t.Errorf("%s: uid %d gid %d mode %v, want %s:%s 0750", d, sys.Uid, sys.Gid, st.Mode().Perm(), pw[2], pw[3])
		}
	}
	if out, errOut, code := run(t, time.Minute, nil, "rpm", "--root", root, "-V", "--nodeps", "jobengine"); code != 0 {
		t.Errorf("rpm -V in the root: exit %d\n%s%s", code, out, errOut)
	}
	// %post applied the preset: disabled.
	if _, err := os.Lstat(executorLink); !os.IsNotExist(err) {
		t.Errorf("the executor is enabled although the preset disables it (%v)", err)
	}
	// The binary runs in a root with no libraries but the ELF loader.
	if out := mustRun(t, time.Minute, "chroot", root, "/usr/bin/jobengine", "version"); strings.TrimSpace(out) != "jobengine "+buildVersion {
		t.Errorf("jobengine version in the root: %q", out)
	}

	rpmIn("-e", "jobengine")
	if _, err := os.Stat(inRoot("/usr/bin/jobengine")); !os.IsNotExist(err) {
		t.Errorf("after rpm -e, /usr/bin/jobengine is still there (%v)", err)
	}
	if got := rootUser(t, root); got == nil {
		t.Error("rpm -e removed the jobengine user; it is documented to stay")
	}

	// A site preset enabling the executor: %post on install applies it.
	preset("80-jobengine.preset", "enable jobengine-executor.service\n")
	rpmIn("-i", "--nodeps", rpm)
	if _, err := os.Lstat(executorLink); err != nil {
		t.Errorf("the preset enables the executor, but %%post did not: %v", err)
	}

	// An upgrade (the same package again: %pre and %post see 2, the old
	// one's %preun and %postun 1) keeps settings and enabled units.
	appendFile(t, inRoot("/etc/sysconfig/jobengine-executor"), "\nDAEMON_ARGS=\"--threads 3\"\n")
	if err := os.Symlink("/usr/lib/systemd/system/jobengine-distributor@.service", demoLink); err != nil {
		t.Fatal(err)
	}
	rpmIn("-U", "--replacepkgs", "--nodeps", rpm)
	if b, _ := os.ReadFile(inRoot("/etc/sysconfig/jobengine-executor")); !strings.Contains(string(b), "--threads 3") {
		t.Errorf("the upgrade replaced the changed /etc/sysconfig/jobengine-executor:\n%s", b)
	}
	for _, l := range []string{executorLink, demoLink} {
		if _, err := os.Lstat(l); err != nil {
			t.Errorf("the upgrade disabled %s: %v", filepath.Base(l), err)
		}
	}

	// Removal disables the executor and the distributor instances, and
	// keeps the changed settings as .rpmsave.
	rpmIn("-e", "jobengine")
	for _, l := range []string{executorLink, demoLink} {
		if _, err := os.Lstat(l); !os.IsNotExist(err) {
			t.Errorf("after rpm -e, %s is still enabled (%v)", filepath.Base(l), err)
		}
	}
	if _, err := os.Stat(inRoot("/etc/sysconfig/jobengine-executor.rpmsave")); err != nil {
		t.Errorf("the changed settings were not kept as .rpmsave: %v", err)
	}
}

// rootUser returns the jobengine line of the root's /etc/passwd, split, or
// nil.
func rootUser(t *testing.T, root string) []string {
	t.Helper()
	f, err := os.Open(filepath.Join(root, "etc/passwd"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if f := strings.Split(sc.Text(), ":"); len(f) == 7 && f[0] == "jobengine" {
			return f
		}
	}
	return nil
}

// scratchRoot makes a root with what the scriptlets need and nothing
// else: the host's copies of scriptletTools and the libraries they load,
// /dev/null, and an /etc with root alone in it.
func scratchRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	// The host's layout: /bin, /sbin, /lib and /lib64 are links into /usr
	// on a merged /usr.
	for _, d := range []string{"usr/bin", "usr/sbin", "usr/lib", "usr/lib64", "etc", "dev", "tmp", "var/tmp"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"bin", "sbin", "lib", "lib64"} {
		if target, err := os.Readlink("/" + d); err == nil {
			if err := os.Symlink(target, filepath.Join(root, d)); err != nil {
				t.Fatal(err)
			}
		} else if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	path := os.Getenv("PATH") + ":/usr/sbin:/sbin"
	for _, tool := range scriptletTools {
		p := lookPath(tool, path)
		if p == "" {
			t.Skipf("%s is not installed: the rpm's scriptlets need it in the root", tool)
		}
		copyInto(t, root, p)
		out := mustRun(t, time.Minute, "ldd", p)
		for _, line := range strings.Split(out, "\n") {
			// "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)" or
			// "/lib64/ld-linux-x86-64.so.2 (0x…)"
			f := strings.Fields(line)
			switch {
			case len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
				copyInto(t, root, f[2])
			case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
				copyInto(t, root, f[0])
			}
		}
	}
	if err := unix.Mknod(filepath.Join(root, "dev/null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		t.Skipf("cannot make /dev/null in the scratch root: %v", err)
	}
	if err := os.Chmod(filepath.Join(root, "dev/null"), 0o666); err != nil {
		t.Fatal(err)
	}
	for name, text := range map[string]string{
		"passwd":        "root:x:0:0:root:/root:/bin/sh\n",
		"group":         "root:x:0:\n",
		"shadow":        "root:*:19000:0:99999:7:::\n",
		"gshadow":       "root:*::\n",
		"nsswitch.conf": "passwd: files\ngroup: files\nshadow: files\ngshadow: files\n",
	} {
		if err := os.WriteFile(filepath.Join(root, "etc", name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// useradd's system uid range.
	if b, err := os.ReadFile("/etc/login.defs"); err == nil {
		if err := os.WriteFile(filepath.Join(root, "etc/login.defs"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// lookPath finds a program in path, /bin/sh included as itself.
func lookPath(name, path string) string {
	for _, dir := range filepath.SplitList(path) {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// copyInto copies the file at p (symbolic links followed) to the same
// path under root.
func copyInto(t *testing.T, root, p string) {
	t.Helper()
	dst := filepath.Join(root, p)
	if _, err := os.Lstat(dst); err == nil {
		return
	}
	src, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	st, err := src.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, st.Mode().Perm())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, src); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// appendFile appends s to the file at path, creating it.
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
