package distributor

// Log lines that programs read back. The fault suite reads the
// distributors' JSON logs to time leader failovers and to count the ticks
// a new leader found half done; it matches these constants, never the
// wording, so the text may change without breaking it.
const (
	// MsgLeading is logged when this process becomes the distributor's
	// leader and starts creating jobs.
	MsgLeading = "leading: creating jobs"

	// MsgTickJobExists is logged when the job of a tick was already
	// created by an earlier leader that did not record the tick.
	MsgTickJobExists = "job of this tick already created by an earlier leader"
)
