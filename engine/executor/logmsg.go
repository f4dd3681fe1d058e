package executor

// Log lines that programs read back. The fault suite counts the final
// writes of every job from the executors' JSON logs; it matches these
// constants, never the wording, so the text may change without breaking it.
const (
	// MsgJobFinished is logged once for every final write of a job that
	// went through, with the job's id in the field FieldJob.
	MsgJobFinished = "job finished"

	// FieldJob is the field that holds the job's id in the lines of a job.
	FieldJob = "job"
)
