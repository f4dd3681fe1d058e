// Package actionv1 is protocol version 1 between the jobengine executor and
// its action plugins: the gRPC service generated from action.proto, the
// go-plugin handshake values and the limits both sides enforce. The SDK
// (actions/sdk) and the host (engine/pluginhost) are its Go users; plugin
// authors use the SDK, or serve action.proto from another language as
// docs/plugin-protocol.md tells.
package actionv1

// ProtocolVersion is the go-plugin application protocol version of this
// package. A plugin and a host agree on it during the handshake.
const ProtocolVersion = 1

// The go-plugin handshake cookie. It is not a secret: it only keeps a
// plugin binary that is started by hand, or an unrelated go-plugin binary
// dropped in the plugin directory, from being taken for a jobengine plugin.
const (
	CookieKey   = "JOBENGINE_ACTION_PLUGIN"
	CookieValue = "6a0b3c1e-jobengine-action-plugin"
)

// PluginName is the name of the plugin in go-plugin's plugin set.
const PluginName = "action"

// HostPIDEnv names the environment variable in which the host passes its
// pid, so that a plugin can exit when its host is gone (its parent pid
// changes) even where the kernel's parent-death signal is not available.
const HostPIDEnv = "JOBENGINE_HOST_PID"

// Limits of the protocol. The SDK keeps within them (it clamps progress and
// truncates text); the host fails the job of a plugin that does not.
const (
	// MaxStatusBytes bounds a status message and a result message; it
	// equals the job document's limit.
	MaxStatusBytes = 4096
	// MaxLogBytes bounds one log line: its message, field keys and field
	// values together.
	MaxLogBytes = 16 << 10
	// MaxHrefBytes bounds one affected-resource href.
	MaxHrefBytes = 1024
	// MaxHrefsPerEvent bounds the hrefs of one Affected event.
	MaxHrefsPerEvent = 1000
	// MaxErrorBytes bounds the error text of a result.
	MaxErrorBytes = MaxStatusBytes
	// MaxMessageBytes bounds one gRPC message from a plugin.
	MaxMessageBytes = 1 << 20
)

// LogLevels are the levels a LogLine may carry.
var LogLevels = []string{"debug", "info", "warn", "error"}

// Limits of a LogLine's fields.
const (
	// MaxLogFields bounds the fields of one log line.
	MaxLogFields = 64
	// MaxFieldKeyBytes bounds a field's key (at least 1 byte).
	MaxFieldKeyBytes = 64
)

// ValidActionName reports whether s can name an action: 1-64 characters of
// a-z, 0-9, '_', '-' and '.', other than "." and "..". The host applies the
// same rule to every job's action (engine/action.ValidName).
func ValidActionName(s string) bool {
	if len(s) == 0 || len(s) > 64 || s == "." || s == ".." {
		return false
	}
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '_', c == '-', c == '.':
		default:
			return false
		}
	}
	return true
}
