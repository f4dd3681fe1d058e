// Package remote runs jobs on other machines the way ansible-runner does:
// transmit turns a job and its private data directory into a stream, a
// worker runs it and streams back status lines, events, keepalives, a
// final status with the return code, an archive of its artifacts and an
// end marker, and a processor applies that stream. The framing is
// ansible-runner's streaming format (newline-delimited JSON; {"zipfile": N}
// followed by the base64 of an N-byte zip archive; {"eof": true} last), so
// each side interoperates with ansible-runner's transmit, worker and
// process.
//
// Every reader of a stream treats it as input: a line that is not JSON, an
// archive that does not decode or unpacks outside its directory, and a
// stream that ends before its end marker are errors that say what was wrong
// with a bounded excerpt, never a hang or a half-applied result.
package remote
