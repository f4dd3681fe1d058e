// Package notify delivers notifications of jobs: notification templates (a
// signed webhook, an e-mail through SMTP, a command), their attachments to
// actions, templates, workflows and inventories, and the leader-run sender.
//
// A notification is written where it happens. A job names the templates it
// notifies per event (jobs.Notifications, filled at creation from what is
// attached to it: Resolver); the job store records one notice per template
// in the same ZooKeeper transaction as the state change that causes it
// (engine/jobs, notices.go), so a notice is never lost to a crash and
// never exists for a write that did not happen, and a job never waits for
// a delivery. The Sender, run by the elected leader (Start/Stop), delivers
// each notice, deletes it once delivered, retries a failed delivery with a
// capped back-off, and parks it with its error after MaxAttempts, where
// `jobengine notification list --failed` shows it and `notification retry`
// sends it back. Delivery is at least once: every delivery of one notice
// carries the same ID (the webhook's X-Jobengine-Delivery header, the
// e-mail's Message-ID, the command's JOBENGINE_DELIVERY), for receivers to
// deduplicate.
//
// Webhooks are signed: X-Jobengine-Signature is "sha256=" and the
// HMAC-SHA256, keyed with the template's secret, of the X-Jobengine-
// Timestamp header, a dot and the body; Verify checks it as a receiver
// should, refusing timestamps more than five minutes away (replays).
// Secrets (a webhook's key, an SMTP password) are stored apart from their
// template, are given by file or standard input, and are never shown.
package notify
