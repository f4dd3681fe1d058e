package remote

import (
	"archive/zip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Limits of an archive's content.
const (
	// MaxUnpacked bounds the total size of an archive's files.
	MaxUnpacked = 8 << 30
	// MaxEntries bounds the entries of an archive.
	MaxEntries = 200_000
)

// WriteZip writes a zip archive of dir's content to w, as ansible-runner
// archives a directory: paths relative to dir, directories as entries,
// file modes kept (the execute bit matters: an inventory script), symbolic
// links stored as links, pipes and sockets skipped.
func WriteZip(w io.Writer, dir string) error {
	zw := zip.NewWriter(w)
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil || rel == "." {
			return err
		}
		info, err := os.Lstat(path)
		if err != nil {
			return err
		}
		mode := info.Mode()
		if mode&(fs.ModeNamedPipe|fs.ModeSocket|fs.ModeDevice|fs.ModeCharDevice) != 0 {
			return nil
		}
		hdr, err := zip.FileInfoHeader(info)
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		switch {
		case mode.IsDir():
			hdr.Name += "/"
			hdr.Method = zip.Store
			_, err = zw.CreateHeader(hdr)
			return err
		case mode&fs.ModeSymlink != 0:
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			hdr.Method = zip.Store
			fw, err := zw.CreateHeader(hdr)
			if err != nil {
				return err
			}
			_, err = io.WriteString(fw, target)
			return err
		}
		hdr.Method = zip.Deflate
		fw, err := zw.CreateHeader(hdr)
		if err != nil {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(fw, f)
		return err
	})
	if err != nil {
		return fmt.Errorf("archiving %s: %w", dir, err)
	}
	return zw.Close()
}

// ExtractZip unpacks an archive into dir (created if missing). Entries are
// checked before anything is written: no absolute path, none leaving dir,
// no more than MaxEntries entries or MaxUnpacked bytes. Symbolic links are
// made last, so no file is written through one; their targets are kept as
// they are (a project may link within itself), relative or not. Setuid and
// setgid bits are dropped.
func ExtractZip(r io.ReaderAt, size int64, dir string) error {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return &StreamError{Reason: "the archive is not a zip file: " + err.Error()}
	}
	if len(zr.File) > MaxEntries {
		return &StreamError{Reason: fmt.Sprintf("the archive has %d entries; at most %d", len(zr.File), MaxEntries)}
	}
	var total uint64
	for _, f := range zr.File {
		if err := checkEntry(f.Name); err != nil {
			return err
		}
		total += f.UncompressedSize64
	}
	if total > MaxUnpacked {
		return &StreamError{Reason: fmt.Sprintf("the archive unpacks to %d bytes; at most %d", total, int64(MaxUnpacked))}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	var links []*zip.File
	for _, f := range zr.File {
		mode := f.Mode()
		target := filepath.Join(dir, filepath.FromSlash(strings.TrimSuffix(f.Name, "/")))
		switch {
		case mode&fs.ModeSymlink != 0:
			links = append(links, f)
			continue
		case mode.IsDir() || strings.HasSuffix(f.Name, "/"):
			if err := os.MkdirAll(target, 0o700); err != nil {
				return err
			}
			continue
		}
		if err := extractFile(f, dir, target); err != nil {
			return err
		}
	}
	for _, f := range links {
		target := filepath.Join(dir, filepath.FromSlash(f.Name))
		if err := noLinkOnPath(dir, filepath.Dir(target)); err != nil {
			return err
		}
		rc, err := f.Open()
		if err != nil {
			return &StreamError{Reason: fmt.Sprintf("archive entry %s: %v", f.Name, err)}
		}
		dest, err := io.ReadAll(io.LimitReader(rc, 4096))
		rc.Close()
		if err != nil {
			return &StreamError{Reason: fmt.Sprintf("archive entry %s: %v", f.Name, err)}
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
			return err
		}
		_ = os.Remove(target)
		if err := os.Symlink(string(dest), target); err != nil {
			return err
		}
	}
	// Directories get their modes last: a read-only one would refuse its files.
	for _, f := range zr.File {
		if f.Mode().IsDir() {
			target := filepath.Join(dir, filepath.FromSlash(strings.TrimSuffix(f.Name, "/")))
			_ = os.Chmod(target, f.Mode().Perm()|0o700)
		}
	}
	return nil
}

func extractFile(f *zip.File, dir, target string) error {
	if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
		return err
	}
	if err := noLinkOnPath(dir, target); err != nil {
		return err
	}
	rc, err := f.Open()
	if err != nil {
		return &StreamError{Reason: fmt.Sprintf("archive entry %s: %v", f.Name, err)}
	}
	defer rc.Close()
	_ = os.Remove(target) // a file of the same name is replaced, not written through
	out, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, f.Mode().Perm()&0o777|0o600)
	if err != nil {
		return err
	}
	n, err := io.Copy(out, io.LimitReader(rc, int64(f.UncompressedSize64)+1))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return &StreamError{Reason: fmt.Sprintf("archive entry %s does not unpack: %v", f.Name, err)}
	}
	if uint64(n) != f.UncompressedSize64 {
		return &StreamError{Reason: fmt.Sprintf("archive entry %s: %d bytes, the archive says %d", f.Name, n, f.UncompressedSize64)}
	}
	if err := os.Chmod(target, f.Mode().Perm()&0o777); err != nil {
		return err
	}
	if !f.Modified.IsZero() {
		_ = os.Chtimes(target, time.Now(), f.Modified)
	}
	return nil
}

// checkEntry refuses a name that is absolute or leaves its directory.
func checkEntry(name string) error {
	clean := filepath.Clean(filepath.FromSlash(name))
	switch {
	case name == "" || strings.ContainsRune(name, 0):
		return &StreamError{Reason: fmt.Sprintf("archive entry %q is not a file name", name)}
	case filepath.IsAbs(clean) || strings.HasPrefix(name, "/"):
		return &StreamError{Reason: fmt.Sprintf("archive entry %q is an absolute path", name)}
	case clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)):
		return &StreamError{Reason: fmt.Sprintf("archive entry %q leaves the directory it unpacks into", name)}
	}
	return nil
}

// noLinkOnPath refuses a path inside dir that goes through a symbolic link
// (one made by an earlier unpacking into the same directory).
func noLinkOnPath(dir, path string) error {
	rel, err := filepath.Rel(dir, path)
	if err != nil {
		return err
	}
	cur := dir
	for _, part := range strings.Split(rel, string(filepath.Separator)) {
		if part == "." || part == "" {
			continue
		}
		cur = filepath.Join(cur, part)
		fi, err := os.Lstat(cur)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSymlink != 0 && cur != path {
			return &StreamError{Reason: fmt.Sprintf("archive entry %s would be written through the symbolic link %s", rel, cur)}
		}
	}
	return nil
}
