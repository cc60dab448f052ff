// Package deploy renders the Kubernetes and OpenShift objects that run
// `berth serve` in a cluster — Deployment, Service, PersistentVolumeClaim,
// ConfigMap with the serve config, Routes (and the grant that lets the
// router read their certificate Secrets) and a ServiceMonitor — from a
// registry config in the shape of the image registry operator's spec
// (imageregistry.operator.openshift.io/v1 Config): replicas, storage.pvc /
// emptyDir / s3 / gcs / azure, routes[] with hostname and secretName,
// defaultRoute, requests and readOnly.
//
// It is pure: a config document in, YAML documents out, no cluster access.
// The fields only a deployment has (replicas, routes, defaultRoute,
// storage.pvc) are taken out here; what remains is berth serve's own config,
// parsed and validated by internal/config and shipped in the ConfigMap with
// the paths rewritten to where the pod mounts things. Secrets are only ever
// referenced (credentials through envFrom, certificates and htpasswd as
// volumes, route certificates as externalCertificate), never rendered, so
// the output can be committed.
//
// The objects are small local types with the Kubernetes JSON field names;
// the tests decode every rendered object strictly into k8s.io/api types (a
// test-only dependency), so a misspelt field fails there. It must not import
// cobra, the server or the stores.
package deploy
