// Package actions holds the built-in actions. Each registers itself with
// engine/action in an init function, the same way every action is found.
// Today they are all test actions (sleep, fail, echo, dummy_test_action):
// an executor offers them only with --enable-test-actions, and
// `jobengine dev` always.
package actions
