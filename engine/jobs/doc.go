// Package jobs is the home of a job's life: the live job documents in
// ZooKeeper, their state machine, creation atomically with the queue entry,
// cancel and restore, and every transition of a running job. Whoever
// changes a job's state — the executor today; the scheduler, workflows and
// remote execution next — asks this package for the transition and commits
// what it returns: nothing else edits a document's state, attempt or
// executor, or builds a transaction that writes one.
//
// # States
//
// QUEUED → RUNNING → SUCCESS | FAILED | CANCELED, QUEUED → CANCELED. Two
// more edges: RUNNING → RUNNING, a new attempt of a job whose executor was
// lost, and RUNNING → QUEUED, a requeue. A final state never changes
// (CanTransition, Job.Transition).
//
// A job with scheduling needs (Scheduling: instance groups, impact,
// concurrency keys, dependencies, fan-out) starts PENDING, in the index of
// PENDING jobs (/pending/<uuid>), instead of QUEUED on the shared queue: PENDING → QUEUED when the
// scheduler places it on an executor's direct queue, PENDING → FAILED when
// a dependency failed, PENDING → CANCELED. A placed job goes back to
// PENDING when its executor was lost before it started (QUEUED → PENDING),
// when its stopping executor requeues it, or when the lost-job policy
// reruns it (RUNNING → PENDING). A fan-out parent stays PENDING and ends
// with its children (PENDING → SUCCESS | FAILED | CANCELED).
//
// # Lifecycle operations
//
// A writer that holds a job's queue entry (a Hold) reads the job (Get),
// asks for a transition, and commits it. Each operation applies the rules
// to a copy of the document and returns the planned write, a *Change,
// writing nothing:
//
//	StartAttempt     QUEUED → RUNNING, attempt + 1, by an executor
//	ApplyLostPolicy  RUNNING without its executor → RUNNING (attempt + 1)
//	                 or FAILED "executor lost", by the action's policy
//	RecordProgress   progress, status, affected resources of a RUNNING job
//	Requeue          RUNNING → QUEUED (a placed job: PENDING), the attempt not counted
//	Finish           → SUCCESS | FAILED | CANCELED
//	Unplace          QUEUED on a lost executor → PENDING, by the reaper
//	Quarantine       an invalid document (or entry) moved aside to
//	                 <root>/job/quarantine, its entry consumed
//
// # What is read is input
//
// Every document read is validated before anything acts on it (Decode: its
// id is its path's uuid, its state known, its numbers in range, its size
// bounded); Get and Scan return a *BadDocumentError for one that fails, and
// its holder quarantines it instead of looping on it.
//
// # Every write has a budget
//
// writeOps, where every document write is built, bounds a document to the
// store's limit (MaxDocumentBytes, lowered by LimitDocuments for a server
// set below the default), trimming what a running job accumulates with a
// note in Job.Trimmed; zkconn refuses any request over its budget before
// sending it (zkconn.ErrTooLarge).
//
// Change.Commit writes a change as one ZooKeeper transaction: the hold's
// fence (the consumer's session), the document's compare-and-set, its
// outbox record, the release of its unique key when final, and what the
// transition does to the queue entry — kept while the job runs (a fenced
// write that does not consume, queue.Consumer.Write), released by a
// requeue, consumed by a final state. A writer that lost its hold gets
// queue.ErrLockLost and has written nothing; a document that changed since
// it was read gives ErrConflict; a connection error leaves the outcome
// unknown, and committing the same change again resolves it. The failure
// of any one operation of a transaction is a *zkconn.OpError, the engine's
// one error for "operation i of my transaction failed".
//
// Cancel writes QUEUED → CANCELED at once, unfenced but compare-and-set,
// or leaves a cancel request for the executor of a RUNNING job; Update is
// the unfenced compare-and-set for repairs and tests.
//
// Writers that do not hold an entry — the scheduler — get their operations
// here too, committed under their own fence (an election term's node) with
// CommitFenced or, many at once, CommitBatch: Place (PENDING → QUEUED on
// an executor's direct queue), Explain (why a job waits), FailPending and
// EndFanout. A writer that holds an entry adds its fence to a change with
// Change.Fenced (the reaper, under the hold of a lost executor's entry).
//
// # Events
//
// Observers attached to the store (StoreConfig.Observers) are told of every
// transition it commits and every cancel it writes (not of repairs through
// Update), and of every log line and progress report it records: see
// Observer. The job-events index is one.
//
// # Notifications
//
// A job names the notification templates it notifies when it starts,
// succeeds or fails (Job.Notifications; a StoreConfig.Notifications
// resolver adds those attached to its action). The write that starts it or
// makes it final records one Notice per template in the same transaction,
// under /notifications/outbox (notices.go), so a notification is never lost
// to a crash and never sent for a write that did not happen; engine/notify
// delivers them. Observers are not used for this: they hear of a write at
// most once. CreateFailed records a launch refused at its time as a FAILED
// job that never ran, with its failure notices.
package jobs
