package main

import "github.com/spf13/cobra"

func newMirrorCmd() *cobra.Command {
	return &cobra.Command{Use: "mirror", Short: "(not yet implemented)", Hidden: true}
}
