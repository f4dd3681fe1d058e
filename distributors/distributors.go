// Package distributors holds the built-in distributors, registered by name.
package distributors
