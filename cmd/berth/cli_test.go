package main

import (
	"bytes"
	"strings"
	"testing"
)

// runBerth runs the command tree in-process, as a user would run berth.
func runBerth(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	return runBerthIn(t, "", args...)
}

// runBerthIn is runBerth with stdin.
func runBerthIn(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	root := newRootCmd()
	var out, errb bytes.Buffer
	root.SetIn(strings.NewReader(stdin))
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(args)
	err = root.Execute()
	return out.String(), errb.String(), err
}
