package main

import (
	"fmt"
	"os"

	"github.com/berth-registry/berth/internal/deploy"
	"github.com/spf13/cobra"
)

func newDeployCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "deploy",
		Short: "Render Kubernetes/OpenShift manifests that run berth serve in a cluster",
	}
	cmd.AddCommand(newDeployRenderCmd())
	return cmd
}

func newDeployRenderCmd() *cobra.Command {
	var cfgPath string
	var opts deploy.Options
	cmd := &cobra.Command{
		Use:   "render",
		Short: "Print the objects that run berth serve with this config",
		Long: `Print, as YAML documents for kubectl apply -f - or oc apply -f -, the
objects that run berth serve in a cluster: a ConfigMap with the serve config,
a Deployment, a Service, a PersistentVolumeClaim (storage.pvc without a
claim name), OpenShift Routes (with a Role and RoleBinding that let the router
read their certificate Secrets) and a ServiceMonitor.

--config is berth serve's config in the shape of the image registry
operator's spec (or a whole imageregistry.operator.openshift.io/v1 Config).
Besides serve's own fields it reads the deployment's:

  replicas       pods (default 1); more than one need shared metadata
                 (metadataDatabase) and refuse emptyDir storage
  storage.pvc    {claim}: the data on a PersistentVolumeClaim (an existing
                 claim, or one rendered as NAME-storage)
  routes         [{name, hostname, secretName}]: a Route per host name, its
                 certificate from the kubernetes.io/tls Secret secretName
  defaultRoute   a Route with the cluster's generated host name

Secrets are referenced, never rendered: NAME-private-configuration (envFrom:
REGISTRY_STORAGE_S3_ACCESSKEY…, BERTH_METADATA_DSN, BERTH_METRICS_SECRET),
NAME-tls (the serving certificate when tls is set; OpenShift's service CA
issues it), NAME-htpasswd (key htpasswd, when auth.htpasswd is set).
httpSecret, auth.tokenSecret and metrics.secret are refused: a ConfigMap is
no place for them. With auth on and metrics.open unset, the ServiceMonitor
scrapes with basicAuth from BERTH_METRICS_SECRET in NAME-private-configuration,
the key berth serve reads its metrics secret from.`,
		Example: `  berth deploy render --config registry.yaml --image registry.example.com/berth/berth:1.0.0 --namespace berth | oc apply -f -`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfgPath == "" {
				return fmt.Errorf("--config is required")
			}
			raw, err := os.ReadFile(cfgPath)
			if err != nil {
				return err
			}
			out, err := deploy.Render(raw, opts)
			if err != nil {
				return fmt.Errorf("%s: %w", cfgPath, err)
			}
			_, err = cmd.OutOrStdout().Write(out)
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&cfgPath, "config", "", "the registry config (berth serve's, operator-shaped)")
	fl.StringVar(&opts.Image, "image", "", "berth's image (required; see berth image build)")
	fl.StringVar(&opts.Name, "name", "berth", "name (and prefix) of the objects")
	fl.StringVar(&opts.Namespace, "namespace", "", "namespace of the objects (default: none, kubectl's)")
	fl.StringVar(&opts.StorageSize, "storage-size", "100Gi", "size of a rendered PersistentVolumeClaim")
	fl.StringVar(&opts.StorageClass, "storage-class", "", "storage class of a rendered PersistentVolumeClaim (default: the cluster's)")
	return cmd
}
