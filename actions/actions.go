// Package actions holds the built-in actions. Each registers itself with
// engine/action in an init function, the same way every action is found.
package actions
