package deploy_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/deploy"
	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	goldenfile "github.com/berth-registry/berth/internal/golden"
)

var opts = deploy.Options{Image: "registry.example.com/berth/berth:1.0.0", Namespace: "registry"}

// The two kinds k8s.io/api lacks, as their upstream schemas have them
// (route.openshift.io/v1 from openshift/api, monitoring.coreos.com/v1 from
// prometheus-operator), reduced to the fields a Route or ServiceMonitor may
// carry at the levels Berth writes; strict decoding refuses anything else.
type osRoute struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Host      string `json:"host,omitempty"`
		Subdomain string `json:"subdomain,omitempty"`
		Path      string `json:"path,omitempty"`
		To        struct {
			Kind   string `json:"kind"`
			Name   string `json:"name"`
			Weight *int32 `json:"weight"`
		} `json:"to"`
		Port *struct {
			TargetPort string `json:"targetPort"`
		} `json:"port,omitempty"`
		TLS *struct {
			Termination                   string `json:"termination"`
			Certificate                   string `json:"certificate,omitempty"`
			Key                           string `json:"key,omitempty"`
			CACertificate                 string `json:"caCertificate,omitempty"`
			DestinationCACertificate      string `json:"destinationCACertificate,omitempty"`
			InsecureEdgeTerminationPolicy string `json:"insecureEdgeTerminationPolicy,omitempty"`
			ExternalCertificate           *struct {
				Name string `json:"name"`
			} `json:"externalCertificate,omitempty"`
		} `json:"tls,omitempty"`
		WildcardPolicy string `json:"wildcardPolicy,omitempty"`
	} `json:"spec"`
}

type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		JobLabel  string               `json:"jobLabel,omitempty"`
		Selector  metav1.LabelSelector `json:"selector"`
		Endpoints []struct {
			Port        string `json:"port,omitempty"`
			TargetPort  string `json:"targetPort,omitempty"`
			Path        string `json:"path,omitempty"`
			Scheme      string `json:"scheme,omitempty"`
			Interval    string `json:"interval,omitempty"`
			HonorLabels bool   `json:"honorLabels,omitempty"`
			TLSConfig   *struct {
				ServerName         string `json:"serverName,omitempty"`
				CAFile             string `json:"caFile,omitempty"`
				InsecureSkipVerify bool   `json:"insecureSkipVerify,omitempty"`
			} `json:"tlsConfig,omitempty"`
			BasicAuth *struct {
				Username corev1.SecretKeySelector `json:"username"`
				Password corev1.SecretKeySelector `json:"password"`
			} `json:"basicAuth,omitempty"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// rendered is one run's objects, decoded strictly.
type rendered struct {
	configMaps  []corev1.ConfigMap
	claims      []corev1.PersistentVolumeClaim
	services    []corev1.Service
	deployments []appsv1.Deployment
	routes      []osRoute
	monitors    []serviceMonitor
	roles       []rbacv1.Role
	bindings    []rbacv1.RoleBinding
}

// decodeAll splits the documents and decodes each strictly into its type;
// an unknown or misspelt field anywhere fails.
func decodeAll(t testing.TB, out []byte) rendered {
	t.Helper()
	var r rendered
	for i, doc := range bytes.Split(out, []byte("\n---\n")) {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			t.Fatalf("document %d: %v\n%s", i, err, doc)
		}
		// As the API server decodes: case-sensitive field names, no
		// unknown or duplicate fields.
		strict := func(v any) {
			j, err := yaml.YAMLToJSONStrict(doc)
			if err != nil {
				t.Fatalf("document %d (%s %s): %v\n%s", i, tm.APIVersion, tm.Kind, err, doc)
			}
			strictErrs, err := sigsjson.UnmarshalStrict(j, v, sigsjson.DisallowDuplicateFields, sigsjson.DisallowUnknownFields)
			if err = errors.Join(append(strictErrs, err)...); err != nil {
				t.Fatalf("document %d (%s %s) does not decode strictly: %v\n%s", i, tm.APIVersion, tm.Kind, err, doc)
			}
		}
		switch tm.APIVersion + " " + tm.Kind {
		case "v1 ConfigMap":
			var o corev1.ConfigMap
			strict(&o)
			r.configMaps = append(r.configMaps, o)
		case "v1 PersistentVolumeClaim":
			var o corev1.PersistentVolumeClaim
			strict(&o)
			r.claims = append(r.claims, o)
		case "v1 Service":
			var o corev1.Service
			strict(&o)
			r.services = append(r.services, o)
		case "apps/v1 Deployment":
			var o appsv1.Deployment
			strict(&o)
			r.deployments = append(r.deployments, o)
		case "rbac.authorization.k8s.io/v1 Role":
			var o rbacv1.Role
			strict(&o)
			r.roles = append(r.roles, o)
		case "rbac.authorization.k8s.io/v1 RoleBinding":
			var o rbacv1.RoleBinding
			strict(&o)
			r.bindings = append(r.bindings, o)
		case "route.openshift.io/v1 Route":
			var o osRoute
			strict(&o)
			r.routes = append(r.routes, o)
		case "monitoring.coreos.com/v1 ServiceMonitor":
			var o serviceMonitor
			strict(&o)
			r.monitors = append(r.monitors, o)
		default:
			t.Fatalf("document %d: unexpected %s %s", i, tm.APIVersion, tm.Kind)
		}
	}
	return r
}

// checkWiring requires the objects to fit together as a cluster would need.
func checkWiring(t testing.TB, r rendered) {
	t.Helper()
	if len(r.deployments) != 1 || len(r.services) != 1 || len(r.configMaps) != 1 || len(r.monitors) != 1 {
		t.Fatalf("want one Deployment, Service, ConfigMap and ServiceMonitor; got %d, %d, %d, %d", len(r.deployments), len(r.services), len(r.configMaps), len(r.monitors))
	}
	d, svc, cm := r.deployments[0], r.services[0], r.configMaps[0]
	names := func(meta metav1.ObjectMeta) {
		for _, msg := range validation.IsDNS1123Subdomain(meta.Name) {
			t.Errorf("name %q: %s", meta.Name, msg)
		}
		for k, v := range meta.Labels {
			for _, msg := range append(validation.IsQualifiedName(k), validation.IsValidLabelValue(v)...) {
				t.Errorf("%s label %s=%s: %s", meta.Name, k, v, msg)
			}
		}
	}
	names(d.ObjectMeta)
	names(svc.ObjectMeta)
	names(cm.ObjectMeta)

	// The serve config in the ConfigMap is one berth serve accepts.
	if _, err := config.Parse(strings.NewReader(cm.Data["registry.yaml"])); err != nil {
		t.Errorf("the ConfigMap's registry.yaml: %v", err)
	}
	pod := d.Spec.Template
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		t.Fatal(err)
	}
	if !sel.Matches(labelSet(pod.Labels)) {
		t.Errorf("the Deployment's selector %s does not match its pods' labels %v", sel, pod.Labels)
	}
	for k, v := range svc.Spec.Selector {
		if pod.Labels[k] != v {
			t.Errorf("the Service selects %s=%s, the pods have %q", k, v, pod.Labels[k])
		}
	}
	vols := map[string]corev1.Volume{}
	for _, v := range pod.Spec.Volumes {
		vols[v.Name] = v
	}
	c := pod.Spec.Containers[0]
	for _, m := range c.VolumeMounts {
		if _, ok := vols[m.Name]; !ok {
			t.Errorf("mount %s of a volume the pod lacks", m.Name)
		}
	}
	if v := vols["config"]; v.ConfigMap == nil || v.ConfigMap.Name != cm.Name {
		t.Errorf("the config volume %+v is not the ConfigMap %s", v, cm.Name)
	}
	if v := vols["data"]; v.PersistentVolumeClaim != nil {
		found := len(r.claims) == 0 // an existing claim
		for _, pvc := range r.claims {
			found = found || pvc.Name == v.PersistentVolumeClaim.ClaimName
		}
		if !found {
			t.Errorf("the data volume names claim %s, which is not rendered", v.PersistentVolumeClaim.ClaimName)
		}
	}
	ports := map[string]bool{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort == 5000
	}
	if !ports[svc.Spec.Ports[0].TargetPort.String()] {
		t.Errorf("the Service targets port %s, the container has %v", svc.Spec.Ports[0].TargetPort.String(), c.Ports)
	}
	if c.SecurityContext == nil || c.SecurityContext.ReadOnlyRootFilesystem == nil || !*c.SecurityContext.ReadOnlyRootFilesystem {
		t.Errorf("the container's root file system is writable")
	}
	if pod.Spec.SecurityContext == nil || pod.Spec.SecurityContext.RunAsNonRoot == nil || !*pod.Spec.SecurityContext.RunAsNonRoot {
		t.Errorf("the pod may run as root")
	}
	for _, rt := range r.routes {
		names(rt.ObjectMeta)
		if rt.Spec.To.Kind != "Service" || rt.Spec.To.Name != svc.Name || rt.Spec.Port == nil || rt.Spec.Port.TargetPort != svc.Spec.Ports[0].Name {
			t.Errorf("route %s goes to %+v port %+v, not the Service %s", rt.Name, rt.Spec.To, rt.Spec.Port, svc.Name)
		}
		if rt.Spec.Host != "" {
			for _, msg := range validation.IsDNS1123Subdomain(rt.Spec.Host) {
				t.Errorf("route %s host %q: %s", rt.Name, rt.Spec.Host, msg)
			}
		}
	}
	granted := map[string]bool{}
	for _, b := range r.bindings {
		routerBound := len(b.Subjects) == 1 && b.Subjects[0].Kind == "ServiceAccount" && b.Subjects[0].Name == "router" && b.Subjects[0].Namespace == "openshift-ingress"
		for _, ro := range r.roles {
			if routerBound && b.RoleRef.Kind == "Role" && b.RoleRef.Name == ro.Name {
				for _, rule := range ro.Rules {
					if slices.Contains(rule.Resources, "secrets") && slices.Contains(rule.Verbs, "get") && slices.Contains(rule.Verbs, "watch") {
						for _, n := range rule.ResourceNames {
							granted[n] = true
						}
					}
				}
			}
		}
	}
	for _, rt := range r.routes {
		if c := rt.Spec.TLS.ExternalCertificate; c != nil && !granted[c.Name] {
			t.Errorf("route %s uses Secret %s, which the router may not read", rt.Name, c.Name)
		}
	}
	msel, err := metav1.LabelSelectorAsSelector(&r.monitors[0].Spec.Selector)
	if err != nil {
		t.Fatal(err)
	}
	if !msel.Matches(labelSet(svc.Labels)) || r.monitors[0].Spec.Endpoints[0].Port != svc.Spec.Ports[0].Name {
		t.Errorf("the ServiceMonitor does not scrape the Service")
	}
	// With access control on, the scrape presents the metrics secret from
	// the very Secret the pod reads BERTH_METRICS_SECRET from.
	if ba := r.monitors[0].Spec.Endpoints[0].BasicAuth; ba != nil {
		fromPod := false
		for _, c := range r.deployments[0].Spec.Template.Spec.Containers {
			for _, ef := range c.EnvFrom {
				if ef.SecretRef != nil && ef.SecretRef.Name == ba.Password.Name {
					fromPod = true
				}
			}
		}
		if !fromPod || ba.Password.Key != "BERTH_METRICS_SECRET" || ba.Username != ba.Password {
			t.Errorf("the ServiceMonitor's basicAuth %+v is not the pod's BERTH_METRICS_SECRET", ba)
		}
	}
}

type labelSet map[string]string

func (l labelSet) Has(k string) bool              { _, ok := l[k]; return ok }
func (l labelSet) Get(k string) string            { return l[k] }
func (l labelSet) Lookup(k string) (string, bool) { v, ok := l[k]; return v, ok }

func TestRenderGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/render/*.yaml")
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no inputs: %v", err)
	}
	want := map[string]bool{}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".yaml")
		golden := strings.TrimSuffix(in, ".yaml") + ".golden"
		want[golden] = true
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			out, err := deploy.Render(raw, opts)
			if err != nil {
				t.Fatal(err)
			}
			checkWiring(t, decodeAll(t, out))
			goldenfile.Check(t, golden, out)
		})
	}
	// Nothing stale is left.
	goldens, _ := filepath.Glob("testdata/render/*.golden")
	for _, g := range goldens {
		if !want[g] {
			t.Errorf("%s has no input", g)
		}
	}
}

func TestRenderShapes(t *testing.T) {
	render := func(t *testing.T, cfg string) rendered {
		t.Helper()
		out, err := deploy.Render([]byte(cfg), opts)
		if err != nil {
			t.Fatal(err)
		}
		r := decodeAll(t, out)
		checkWiring(t, r)
		return r
	}
	t.Run("created claim", func(t *testing.T) {
		r := render(t, "storage: {pvc: {}}\n")
		if len(r.claims) != 1 || r.claims[0].Spec.AccessModes[0] != corev1.ReadWriteOnce || r.claims[0].Spec.Resources.Requests.Storage().String() != "100Gi" {
			t.Fatalf("claims %+v", r.claims)
		}
		if r.deployments[0].Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
			t.Errorf("a single pod on a ReadWriteOnce claim must be recreated, not rolled: %s", r.deployments[0].Spec.Strategy.Type)
		}
		if got := r.configMaps[0].Data["registry.yaml"]; !strings.Contains(got, "rootDirectory: /var/lib/berth") {
			t.Errorf("serve config does not store on the claim:\n%s", got)
		}
	})
	t.Run("existing claim", func(t *testing.T) {
		r := render(t, "storage: {pvc: {claim: mine}}\n")
		if len(r.claims) != 0 || r.deployments[0].Spec.Template.Spec.Volumes[1].PersistentVolumeClaim.ClaimName != "mine" {
			t.Errorf("claims %+v, volumes %+v", r.claims, r.deployments[0].Spec.Template.Spec.Volumes)
		}
	})
	t.Run("replicas and readOnly", func(t *testing.T) {
		r := render(t, "replicas: 4\nreadOnly: true\nmetadataDatabase: postgres://b@db/b\nstorage: {s3: {bucket: b}}\n")
		if *r.deployments[0].Spec.Replicas != 4 {
			t.Errorf("replicas %d", *r.deployments[0].Spec.Replicas)
		}
		serve, err := config.Parse(strings.NewReader(r.configMaps[0].Data["registry.yaml"]))
		if err != nil {
			t.Fatal(err)
		}
		if !serve.ReadOnly || serve.MetadataDirectory != "/var/lib/berth" || serve.Storage.S3 == nil {
			t.Errorf("serve config %+v", serve)
		}
	})
	t.Run("routes", func(t *testing.T) {
		r := render(t, "storage: {emptyDir: {}}\ndefaultRoute: true\nroutes: [{name: a, hostname: a.example.com, secretName: a-tls}, {name: b, hostname: b.example.com}]\n")
		got := map[string]string{}
		for _, rt := range r.routes {
			cert := ""
			if rt.Spec.TLS.ExternalCertificate != nil {
				cert = rt.Spec.TLS.ExternalCertificate.Name
			}
			got[rt.Name] = rt.Spec.Host + " " + rt.Spec.TLS.Termination + " " + cert
		}
		want := map[string]string{"berth-default-route": " edge ", "a": "a.example.com edge a-tls", "b": "b.example.com edge "}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("routes (-want +got):\n%s", diff)
		}
	})
}

func TestRenderRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, cfg string
		opts      *deploy.Options
		want      []string
	}{
		{"emptyDir with replicas", "replicas: 2\nstorage: {emptyDir: {}}\n", nil, []string{"replicas: 2 with emptyDir"}},
		{"replicas without shared metadata", "replicas: 2\nstorage: {s3: {bucket: b}}\n", nil, []string{"need shared metadata"}},
		{"negative replicas", "replicas: -1\nstorage: {emptyDir: {}}\n", nil, []string{"negative"}},
		{"no storage", "readOnly: true\n", nil, []string{"storage: set one of"}},
		{"host directory", "storage: {filesystem: {rootDirectory: /srv}}\n", nil, []string{"storage.filesystem is a directory on one machine"}},
		{"misspelt deploy field", "storage: {emptyDir: {}}\nroutes: [{name: a, hostnme: a.example.com}]\n", nil, []string{"hostnme", "routes[0].hostname"}},
		{"misspelt pvc field", "storage: {pvc: {claimName: x}}\n", nil, []string{"claimName"}},
		{"misspelt serve field", "storage: {emptyDir: {}}\nreadonly: true\n", nil, []string{"readonly"}},
		{"route without name", "storage: {emptyDir: {}}\nroutes: [{hostname: a.example.com}]\n", nil, []string{"routes[0].name is required"}},
		{"duplicate route", "storage: {emptyDir: {}}\nroutes: [{name: a, hostname: a.example.com}, {name: a, hostname: b.example.com}]\n", nil, []string{"used twice"}},
		{"bad host name", "storage: {emptyDir: {}}\nroutes: [{name: a, hostname: A_B}]\n", nil, []string{"want a DNS name"}},
		{"secrets in a ConfigMap", "storage: {emptyDir: {}}\nhttpSecret: s3cr3t\nmetrics: {secret: scrape}\nauth: {tokenSecret: abcdefghijklmnopqrstuvwxyz0123456789}\n", nil, []string{"httpSecret", "metrics.secret", "auth.tokenSecret"}},
		{"webhook credential in a ConfigMap", "storage: {emptyDir: {}}\nnotifications: {endpoints: [{name: ci, url: 'https://ci/hook', headers: {X-Source: [berth], Authorization: [Bearer x], X-Api-Key: [k]}}]}\n", nil, []string{"notifications.endpoints[0].headers.Authorization", "notifications.endpoints[0].headers.X-Api-Key", "headersFromEnv: {Authorization: VARIABLE}", "-private-configuration"}},
		{"named certificates", "storage: {emptyDir: {}}\ntls: {certFile: a, keyFile: b, certificates: [{hostnames: [x], certFile: c, keyFile: d}]}\n", nil, []string{"tls.certificates"}},
		{"other port", "storage: {emptyDir: {}}\naddr: :8080\n", nil, []string{"listens on :5000"}},
		{"wrong kind", "apiVersion: v1\nkind: ConfigMap\n", nil, []string{"is not an imageregistry.operator.openshift.io/v1 Config"}},
		{"no image", "storage: {emptyDir: {}}\n", &deploy.Options{}, []string{"no image"}},
		{"bad name", "storage: {emptyDir: {}}\n", &deploy.Options{Image: "x", Name: "Berth_1"}, []string{"name \"Berth_1\""}},
		{"every problem at once", "replicas: 2\nstorage: {emptyDir: {}}\nhttpSecret: x\nroutes: [{hostname: a.example.com}]\n", nil, []string{"emptyDir", "httpSecret", "routes[0].name"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := opts
			if tc.opts != nil {
				o = *tc.opts
			}
			out, err := deploy.Render([]byte(tc.cfg), o)
			if err == nil {
				t.Fatalf("rendered:\n%s", out)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func FuzzRender(f *testing.F) {
	inputs, _ := filepath.Glob("testdata/render/*.yaml")
	for _, in := range inputs {
		b, err := os.ReadFile(in)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("storage: {pvc: {}}\nroutes: [{name: a, hostname: a.b}]\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		out, err := deploy.Render(raw, opts)
		if err != nil {
			return
		}
		// Whatever renders decodes strictly and fits together.
		checkWiring(t, decodeAll(t, out))
	})
}
