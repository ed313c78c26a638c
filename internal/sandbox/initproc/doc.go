// Package initproc is the sandbox's init: PID 1 of a sandbox, the warden binary re-executed as
// argv[0] "warden-sandbox-init". Package sandbox plans what it does (see docs/sandbox.md).
//
// It is a package of its own, importing none of net, encoding/json, path/filepath or
// golang.org/x/sys/unix, because Go initialises a binary's packages in import-path order as
// soon as their imports are: with only the earliest of the standard library's packages as
// imports, its init function runs about 8 ms after exec instead of after most of warden's
// packages. Keep it that way: GODEBUG=inittrace=1 shows where it lands.
package initproc
