package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

// version and revision are set at link time by the image build
// (-ldflags "-X main.version=... -X main.revision=..."; see
// selfimage.GoBuildArgs).
var (
	version  = "devel"
	revision = ""
)

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print berth's version and source revision",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s := "berth " + version
			if revision != "" {
				s += " (" + revision + ")"
			}
			_, err := fmt.Fprintln(cmd.OutOrStdout(), s)
			return err
		},
	}
}
