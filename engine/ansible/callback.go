package ansible

import (
	_ "embed"
	"os"
	"path/filepath"
)

// callbackName is the plugin's name: ANSIBLE_STDOUT_CALLBACK selects it.
const callbackName = "jobengine"

//go:embed callback/jobengine.py
var callbackSource []byte

// writeCallback writes the callback plugin into dir (created) and returns dir.
func writeCallback(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	return dir, os.WriteFile(filepath.Join(dir, callbackName+".py"), callbackSource, 0o600)
}
