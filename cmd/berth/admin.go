package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/berth-registry/berth/internal/auth"
	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/metadata"
	"github.com/berth-registry/berth/internal/mirror"
	"github.com/berth-registry/berth/internal/server"
	"github.com/spf13/cobra"
)

func newAdminCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "admin",
		Short: "Manage access control (robot tokens, htpasswd entries, pull secrets) and notification queues",
	}
	token := newAdminTokenCmd()
	ps := &cobra.Command{Use: "pull-secret", Short: "Edit a cluster pull secret (auths JSON)"}
	ps.AddCommand(newAdminPullSecretMergeCmd())
	cmd.AddCommand(token, newAdminHtpasswdCmd(), ps, newAdminEventsCmd())
	return cmd
}

// revocationNote is how soon a revocation applies, for the token help.
var revocationNote = fmt.Sprintf(`A revocation is written to the registry's metadata store, which every serve
replica sharing it reads: each replica re-reads the revoked ids every %s
(and at start), so within %s every replica refuses the token (401
UNAUTHORIZED), and so the access tokens issued for it. Checking a request
costs no query.`, server.DefaultRevocationRefresh, server.DefaultRevocationRefresh)

func newAdminTokenCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Robot tokens: create, list, revoke",
		Long: `Robot tokens are long-lived passwords for a user (CI bots, cluster pull
secrets). Each has an id (its jti), recorded in the registry's metadata store
when it is created, so it can be listed and revoked on its own without
rotating the signing secret (rotating it still revokes every token at once).
Every subcommand reads the registry's config (--config) to find the store.

` + revocationNote,
	}
	cmd.AddCommand(newAdminTokenCreateCmd(), newAdminTokenListCmd(), newAdminTokenRevokeCmd())
	return cmd
}

// loadTokenStore reads the config and opens its metadata store.
func loadTokenStore(cmd *cobra.Command, cfgPath string) (*config.Config, *metadata.Store, error) {
	return loadStore(cmd, cfgPath, "robot tokens")
}

// loadStore reads the config and opens its metadata store, where what
// lives (for the error when --config is missing).
func loadStore(cmd *cobra.Command, cfgPath, what string) (*config.Config, *metadata.Store, error) {
	if cfgPath == "" {
		return nil, nil, errors.New("--config is required: " + what + " are recorded in the metadata store the registry's config names")
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return nil, nil, err
	}
	meta, err := server.OpenMetadata(cmd.Context(), cfg)
	if err != nil {
		return cfg, nil, fmt.Errorf("%s: %w", cfgPath, err)
	}
	return cfg, meta, nil
}

func newAdminTokenCreateCmd() *cobra.Command {
	var user, cfgPath string
	var expires time.Duration
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Print a long-lived robot token for a user, and record its id",
		Long: `Print a robot token: a JWT signed with the registry's token secret
(auth.tokenSecret, else one derived from httpSecret, read from --config) that
works as the password of --user in Basic auth, docker login, podman login or
crane auth login. The roles bound to the user and its groups apply; the user
need not be in the htpasswd file.

Its id, user and validity are recorded in the metadata store of --config
(never the token itself), so "berth admin token list" shows it and "berth
admin token revoke ID" ends it. With emptyDir storage (metadata inside the
serve process) the token is made but not recorded, and only rotating the
secret revokes it.`,
		Example: `  berth admin token create --config registry.yaml --user ci-bot --expires 720h
  podman login --username ci-bot --password-stdin registry.example.com`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if user == "" {
				return errors.New("--user is required")
			}
			if cfgPath == "" {
				return errors.New("--config is required: the token is signed with the secret in the registry's config")
			}
			cfg, err := config.Load(cfgPath)
			if err != nil {
				return err
			}
			secret := ""
			if cfg.Auth != nil {
				secret = cfg.Auth.TokenSecret
			}
			key := auth.SigningKey(secret, cfg.HTTPSecret)
			if key == nil {
				return fmt.Errorf("%s: %w", cfgPath, auth.ErrNoSecret)
			}
			robot, err := auth.NewRobot(key, user, expires, time.Now())
			if err != nil {
				return err
			}
			meta, err := server.OpenMetadata(cmd.Context(), cfg)
			switch {
			case errors.Is(err, server.ErrPrivateMetadata):
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s: %v; the token is not recorded and cannot be revoked on its own\n", cfgPath, err)
			case err != nil:
				return fmt.Errorf("%s: recording the token: %w", cfgPath, err)
			default:
				defer meta.Close()
				// Recorded before it is printed: a token no list shows
				// would be one no one can revoke.
				if err := meta.RecordToken(cmd.Context(), metadata.RobotToken{ID: robot.ID, Subject: robot.User, Created: robot.Created, Expires: robot.Expires}); err != nil {
					return fmt.Errorf("%s: recording the token: %w", cfgPath, err)
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "robot token %s for %s, valid until %s\n", robot.ID, robot.User, robot.Expires.UTC().Format(time.RFC3339))
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), robot.Token)
			return err
		},
	}
	cmd.Flags().StringVar(&user, "user", "", "the user the token authenticates as")
	cmd.Flags().DurationVar(&expires, "expires", 720*time.Hour, "lifetime of the token")
	cmd.Flags().StringVar(&cfgPath, "config", "", "the registry's config file (for the signing secret and the metadata store)")
	return cmd
}

func newAdminTokenListCmd() *cobra.Command {
	var cfgPath, output string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the recorded robot tokens: id, user, created, expiry, revoked",
		Long: `List every robot token recorded in the metadata store of --config, oldest
first: its id, user, creation and expiry times (UTC) and when it was revoked
("-" while it is not). Expired tokens stay listed; they no longer verify.
Tokens made before ids were recorded, or with emptyDir storage, are not
listed (rotate the signing secret to end those).`,
		Example: `  berth admin token list --config registry.yaml
  berth admin token list --config registry.yaml -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "" && output != "json" {
				return fmt.Errorf("--output: %q is not \"json\"", output)
			}
			_, meta, err := loadTokenStore(cmd, cfgPath)
			if err != nil {
				return err
			}
			defer meta.Close()
			toks, err := meta.ListTokens(cmd.Context())
			if err != nil {
				return err
			}
			type row struct {
				ID      string     `json:"id"`
				User    string     `json:"user"`
				Created time.Time  `json:"created"`
				Expires time.Time  `json:"expires"`
				Revoked *time.Time `json:"revoked,omitempty"`
			}
			rows := make([]row, 0, len(toks))
			for _, t := range toks {
				r := row{ID: t.ID, User: t.Subject, Created: t.Created.UTC(), Expires: t.Expires.UTC()}
				if !t.Revoked.IsZero() {
					at := t.Revoked.UTC()
					r.Revoked = &at
				}
				rows = append(rows, r)
			}
			out := cmd.OutOrStdout()
			if output == "json" {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(rows)
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tUSER\tCREATED\tEXPIRES\tREVOKED")
			for _, r := range rows {
				revoked := "-"
				if r.Revoked != nil {
					revoked = r.Revoked.Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.ID, r.User, r.Created.Format(time.RFC3339), r.Expires.Format(time.RFC3339), revoked)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "", "the registry's config file (for the metadata store)")
	cmd.Flags().StringVarP(&output, "output", "o", "", `output format: "" (a table) or "json"`)
	return cmd
}

func newAdminTokenRevokeCmd() *cobra.Command {
	var cfgPath string
	cmd := &cobra.Command{
		Use:   "revoke ID...",
		Short: "Revoke robot tokens by id, without rotating the signing secret",
		Long: `Revoke the robot tokens with these ids (from "berth admin token list"),
all or none: an id with no record is an error and nothing is revoked. Other
tokens, including other tokens of the same user, keep working.

` + revocationNote,
		Example: `  berth admin token revoke --config registry.yaml 3f9c0a1b2c3d4e5f60718293`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, ids []string) error {
			_, meta, err := loadTokenStore(cmd, cfgPath)
			if err != nil {
				return err
			}
			defer meta.Close()
			if err := meta.RevokeTokens(cmd.Context(), ids, time.Now()); err != nil {
				return err
			}
			for _, id := range ids {
				if _, err := fmt.Fprintf(cmd.OutOrStdout(), "revoked %s\n", id); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "", "the registry's config file (for the metadata store)")
	return cmd
}

func newAdminHtpasswdCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "htpasswd USER",
		Short:   "Read a password from stdin and print an htpasswd line with its bcrypt hash",
		Example: `  printf '%s' "$PASSWORD" | berth admin htpasswd alice >> users.htpasswd`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
			if err != nil && line == "" {
				return errors.New("no password on stdin")
			}
			password := strings.TrimRight(line, "\r\n")
			if password == "" {
				return errors.New("the password on stdin is empty")
			}
			entry, err := auth.HashPassword(args[0], password)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), entry)
			return err
		},
	}
}

func newAdminPullSecretMergeCmd() *cobra.Command {
	var host, user string
	var stdin bool
	cmd := &cobra.Command{
		Use:   "merge --registry HOST[:PORT] --user USER --password-stdin FILE",
		Short: "Add a mirror registry's credentials to an existing pull secret",
		Long: `Add (or replace) the credentials of one registry in an auths JSON file —
the cluster's pull secret, podman's auth.json or docker's config.json — as
the disconnected install docs ask admins to do by hand. The password is read
from stdin. Every other entry is kept, the file keeps its mode, and it is
replaced atomically.`,
		Example: `  oc get secret/pull-secret -n openshift-config -o jsonpath='{.data.\.dockerconfigjson}' | base64 -d > pull-secret.json
  printf '%s' "$MIRROR_PASSWORD" | berth admin pull-secret merge --registry mirror.example.com:5000 --user mirror --password-stdin pull-secret.json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !stdin {
				return errors.New("--password-stdin is required: a password on the command line would land in shell history")
			}
			line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
			if err != nil && line == "" {
				return errors.New("no password on stdin")
			}
			replaced, err := mirror.MergePullSecret(args[0], host, user, strings.TrimRight(line, "\r\n"))
			if err != nil {
				return err
			}
			verb := "added"
			if replaced {
				verb = "replaced"
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s: credentials for %s %s\n", args[0], host, verb)
			return err
		},
	}
	cmd.Flags().StringVar(&host, "registry", "", "the registry HOST[:PORT] the cluster pulls from")
	cmd.Flags().StringVar(&user, "user", "", "user name at that registry (a robot token's user works too)")
	cmd.Flags().BoolVar(&stdin, "password-stdin", false, "read the password (or robot token) from stdin")
	return cmd
}
