package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/metadata"
	"github.com/spf13/cobra"
)

func newAdminEventsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "events",
		Short: "Notification queues: list them, drop one an endpoint left behind",
		Long: `Every webhook endpoint of the serve config (notifications.endpoints) has a
queue in the registry's metadata store: events wait there, in order, until the
endpoint accepts them. An endpoint that is removed or renamed leaves its queue
behind (serve warns about it at start); "list" shows every queue and "drop"
removes one. Both read the registry's config (--config) to find the store.`,
	}
	cmd.AddCommand(newAdminEventsListCmd(), newAdminEventsDropCmd())
	return cmd
}

// eventQueueRow is one queue, as list prints it.
type eventQueueRow struct {
	Endpoint   string     `json:"endpoint"`
	Configured bool       `json:"configured"`
	Pending    int64      `json:"pending"`
	Oldest     *time.Time `json:"oldest,omitempty"`
}

func eventQueues(cmd *cobra.Command, cfg *config.Config, meta *metadata.Store) ([]eventQueueRow, error) {
	var names []string
	for _, e := range cfg.Notifications.Endpoints {
		names = append(names, e.Name)
	}
	qs, err := meta.EventQueues(cmd.Context(), names)
	if err != nil {
		return nil, err
	}
	var rows []eventQueueRow
	for _, q := range qs {
		r := eventQueueRow{Endpoint: q.Endpoint, Configured: q.Configured, Pending: q.Pending}
		if !q.Oldest.IsZero() {
			at := q.Oldest.UTC()
			r.Oldest = &at
		}
		rows = append(rows, r)
	}
	return rows, nil
}

func newAdminEventsListCmd() *cobra.Command {
	var cfgPath, output string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the notification queues: endpoint, configured, events waiting, the oldest's time",
		Long: `List the queue of every endpoint of --config's notifications, then the
queues endpoints no longer configured left behind: how many events wait and
when the oldest was queued (UTC).`,
		Example: `  berth admin events list --config registry.yaml
  berth admin events list --config registry.yaml -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "" && output != "json" {
				return fmt.Errorf("--output: %q is not \"json\"", output)
			}
			cfg, meta, err := loadStore(cmd, cfgPath, "notification queues")
			if err != nil {
				return err
			}
			defer meta.Close()
			rows, err := eventQueues(cmd, cfg, meta)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if output == "json" {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(append([]eventQueueRow{}, rows...))
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ENDPOINT\tCONFIGURED\tPENDING\tOLDEST")
			for _, r := range rows {
				oldest := "-"
				if r.Oldest != nil {
					oldest = r.Oldest.Format(time.RFC3339)
				}
				configured := "yes"
				if !r.Configured {
					configured = "no"
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", r.Endpoint, configured, r.Pending, oldest)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "", "the registry's config file (for the metadata store)")
	cmd.Flags().StringVarP(&output, "output", "o", "", `output format: "" (a table) or "json"`)
	return cmd
}

func newAdminEventsDropCmd() *cobra.Command {
	var cfgPath string
	var force bool
	cmd := &cobra.Command{
		Use:   "drop ENDPOINT",
		Short: "Delete every event queued for an endpoint (one no longer configured)",
		Long: `Delete the events waiting in ENDPOINT's queue; they are never delivered.
Meant for the queue an endpoint removed or renamed for good left behind: for
an endpoint --config still has, it is refused unless --force (a running serve
keeps queueing new events for it).`,
		Example: `  berth admin events drop --config registry.yaml old-ci`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, meta, err := loadStore(cmd, cfgPath, "notification queues")
			if err != nil {
				return err
			}
			defer meta.Close()
			name := args[0]
			for _, e := range cfg.Notifications.Endpoints {
				if e.Name == name && !force {
					return fmt.Errorf("endpoint %q is in %s (notifications.endpoints); its events would still be delivered: remove it from the config first, or give --force", name, cfgPath)
				}
			}
			n, err := meta.DropEvents(cmd.Context(), name)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "dropped %d events queued for %s\n", n, name)
			return err
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "", "the registry's config file (for the metadata store)")
	cmd.Flags().BoolVar(&force, "force", false, "drop the queue of an endpoint the config still has")
	return cmd
}
