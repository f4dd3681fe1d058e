package pluginhost

// The plugin protocol's Go code (actions/sdk/proto/v1) is generated from its
// .proto by generate.sh, which installs pinned protoc plugins into .bin.
//go:generate bash generate.sh
