package sandbox

import "github.com/wardenhq/warden/internal/sandbox/initproc"

// MaybeInit runs the sandbox's init and exits if this process was started as one; otherwise
// it returns at once. Call it first thing in main (and in TestMain of tests that start
// sandboxes), before anything else starts goroutines that might touch the filesystem.
//
// The init is package initproc, which already ran it from its own init function, as early
// in the binary's start as Go allows; this stays as the documented entry point.
func MaybeInit() { initproc.MaybeRun() }
