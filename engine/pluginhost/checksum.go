package pluginhost

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// MaxChecksumsBytes bounds a checksums file: a line per plugin.
const MaxChecksumsBytes = 1 << 20

// ReadChecksumsFile reads a checksums file in sha256sum's format into
// Options.Checksums; see ParseChecksums.
// The file is read up to MaxChecksumsBytes, and only if it is a regular
// file. Its errors never quote the file: a path given by mistake (a
// secret) is not echoed.
func ReadChecksumsFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("pluginhost: checksums file: %w", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return nil, fmt.Errorf("pluginhost: checksums file %s is not a regular file", path)
	}
	sums, err := ParseChecksums(io.LimitReader(f, MaxChecksumsBytes))
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, path)
	}
	return sums, nil
}

// ParseChecksums parses the output of `sha256sum FILE...`: one
// "HEX  NAME" (or "HEX *NAME") per line; blank lines and lines starting
// with # are ignored. Plugins are pinned by file name, so a NAME with a
// directory ("actions/hello") pins "hello".
func ParseChecksums(r io.Reader) (map[string]string, error) {
	out := make(map[string]string)
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		escaped := strings.HasPrefix(line, `\`)
		line = strings.TrimPrefix(line, `\`)
		sum, name, ok := strings.Cut(line, " ")
		if !ok || len(name) < 2 || (name[0] != ' ' && name[0] != '*') {
			// The line is not quoted: the file may be anything but a
			// checksums file, a secret one included.
			return nil, fmt.Errorf("pluginhost: checksums line %d is not \"HEX  NAME\" as sha256sum prints it (is this a checksums file?)", n)
		}
		sum, name = strings.ToLower(sum), name[1:]
		if escaped {
			name = strings.NewReplacer(`\\`, `\`, `\n`, "\n", `\r`, "\r").Replace(name)
		}
		if checkHex(sum) != nil {
			return nil, fmt.Errorf("pluginhost: checksums line %d: its first field is not a SHA-256 in hex (64 hex digits, as sha256sum prints)", n)
		}
		name = filepath.Base(name)
		if old, ok := out[name]; ok && old != sum {
			return nil, fmt.Errorf("pluginhost: checksums line %d: %s is pinned twice, to different sums", n, name)
		}
		out[name] = sum
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("pluginhost: checksums: %w", err)
	}
	return out, nil
}

// checkPin refuses a binary whose SHA-256 (of the open file that is about
// to be executed) does not match its pin.
func (pl *plugin) checkPin(sum string) error {
	if pl.pin != "" && sum != pl.pin {
		return fmt.Errorf("%w: %s has SHA-256 %s, pinned %s; refusing to start it (reinstall the plugin or update the pin)", ErrChecksum, pl.path, sum, pl.pin)
	}
	return nil
}
