package main

import (
	"bufio"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/berth-registry/berth/internal/auth"
	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/mirror"
	"github.com/spf13/cobra"
)

func newAdminCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "admin",
		Short: "Manage access control: robot tokens, htpasswd entries, pull secrets",
	}
	token := &cobra.Command{Use: "token", Short: "Robot tokens"}
	token.AddCommand(newAdminTokenCreateCmd())
	ps := &cobra.Command{Use: "pull-secret", Short: "Edit a cluster pull secret (auths JSON)"}
	ps.AddCommand(newAdminPullSecretMergeCmd())
	cmd.AddCommand(token, newAdminHtpasswdCmd(), ps)
	return cmd
}

func newAdminTokenCreateCmd() *cobra.Command {
	var user, cfgPath string
	var expires time.Duration
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Print a long-lived robot token for a user",
		Long: `Print a robot token: a JWT signed with the registry's token secret
(auth.tokenSecret, else one derived from httpSecret, read from --config) that
works as the password of --user in Basic auth, docker login, podman login or
crane auth login. The roles bound to the user and its groups apply; the user
need not be in the htpasswd file.

Nothing is stored on the server: a robot token cannot be revoked on its own.
It lives until it expires, or until the signing secret changes, which revokes
every token at once.`,
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
			tok, err := auth.NewRobotToken(key, user, expires, time.Now())
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), tok)
			return err
		},
	}
	cmd.Flags().StringVar(&user, "user", "", "the user the token authenticates as")
	cmd.Flags().DurationVar(&expires, "expires", 720*time.Hour, "lifetime of the token")
	cmd.Flags().StringVar(&cfgPath, "config", "", "the registry's config file (for the signing secret)")
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
