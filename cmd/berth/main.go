// Command berth is the Berth container registry platform: one binary with a
// verb per job (serve, policy, mirror, bench).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRootCmd()
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "berth:", err)
		os.Exit(exitCode(err))
	}
}

// newRootCmd builds the whole command tree; tests drive it with SetArgs.
func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "berth",
		Short:         "Berth: a container image registry, node registry policy and mirroring in one binary",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newServeCmd(),
		newPolicyCmd(),
		newMirrorCmd(),
		newBenchCmd(),
		newGCCmd(), newPruneCmd(),
		newAdminCmd(),
		newImageCmd(), newVersionCmd(),
		newDeployCmd(),
		newImportCmd(),
	)
	return root
}

// exitError carries a specific process exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func exitCode(err error) int {
	if e, ok := err.(*exitError); ok {
		return e.code
	}
	return 1
}
