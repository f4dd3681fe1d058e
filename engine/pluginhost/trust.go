package pluginhost

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// A plugin runs with the executor's rights and sees every job it is given,
// so whoever can replace a plugin binary owns the executor. A binary, and
// the directories that lead to it, must therefore be writable by nobody
// but root and the service user (the executor's own user).

// trustedOwner reports whether uid may own a plugin or its directory.
func trustedOwner(uid uint32) bool { return uid == 0 || int(uid) == os.Geteuid() }

// ownerOf returns the owner of a file from its FileInfo.
func ownerOf(fi os.FileInfo) (uint32, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return st.Uid, true
}

// checkDir refuses a plugin directory that someone other than root or the
// service user could change: the directory itself must be owned by one of
// them and not writable by its group or others; each directory above it
// must be owned by one of them and be either not writable by group and
// others or sticky (as /tmp, where only a file's owner may rename it).
func checkDir(dir string) error {
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return err
	}
	for p, first := real, true; ; p, first = filepath.Dir(p), false {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		uid, ok := ownerOf(fi)
		if !ok {
			return nil // no owner to check on this system
		}
		mode := fi.Mode()
		switch {
		case !trustedOwner(uid):
			return fmt.Errorf("%s is owned by uid %d, not by root or the service user (uid %d): chown it to one of them", p, uid, os.Geteuid())
		case mode.Perm()&0o022 != 0 && (first || mode&os.ModeSticky == 0):
			return fmt.Errorf("%s is writable by %s (mode %s): anyone there could replace a plugin; chmod go-w %s", p, writers(mode), mode.Perm(), p)
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

// checkBinary refuses a plugin binary (from the FileInfo of the open
// file) that is not a regular executable file owned by root or the
// service user and writable by them only.
func checkBinary(fi os.FileInfo) error {
	mode := fi.Mode()
	switch {
	case !mode.IsRegular():
		return fmt.Errorf("not a regular file (%s)", mode.Type())
	case mode.Perm()&0o111 == 0:
		return fmt.Errorf("not executable (mode %04o); chmod +x it if it is a plugin", mode.Perm())
	case mode.Perm()&0o022 != 0:
		return fmt.Errorf("writable by %s (mode %04o): anyone there could replace what the executor runs; chmod go-w it", writers(mode), mode.Perm())
	}
	if uid, ok := ownerOf(fi); ok && !trustedOwner(uid) {
		return fmt.Errorf("owned by uid %d, not by root or the service user (uid %d); chown it to one of them", uid, os.Geteuid())
	}
	return nil
}

func writers(mode os.FileMode) string {
	var w []string
	if mode&0o020 != 0 {
		w = append(w, "its group")
	}
	if mode&0o002 != 0 {
		w = append(w, "every user")
	}
	return strings.Join(w, " and ")
}

// openBinary opens the plugin binary at path and checks it. With hash it
// also returns the SHA-256 of the open file: what is executed is this open
// file (see execFile), so the hash and the run cannot disagree even if the
// path is replaced meanwhile. The caller closes the file.
func openBinary(path string, hash bool) (*os.File, string, error) {
	// O_NONBLOCK: a FIFO in the directory must not hang the executor
	// waiting for a writer; it is then refused as not regular.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, "", err
	}
	fi, err := f.Stat()
	if err == nil {
		err = checkBinary(fi)
	}
	if err != nil {
		f.Close()
		return nil, "", err
	}
	if !hash {
		return f, "", nil
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		f.Close()
		return nil, "", fmt.Errorf("reading %s: %w", path, err)
	}
	return f, hex.EncodeToString(h.Sum(nil)), nil
}
