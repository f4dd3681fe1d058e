// Package version holds the engine's version, set at build time.
package version

// Version is set by the linker (-X) from git describe; "dev" otherwise.
var Version = "dev"
