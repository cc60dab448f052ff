package deploy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/berth-registry/berth/internal/config"
	"go.yaml.in/yaml/v3"
	k8syaml "sigs.k8s.io/yaml"
)

// Where the pod mounts things, and what the image runs.
const (
	ConfigDir   = "/etc/berth"
	ConfigFile  = "registry.yaml"
	DataDir     = "/var/lib/berth"
	TLSDir      = "/etc/berth/tls"
	HtpasswdDir = "/etc/berth/auth"
	Port        = 5000
	MetricsPath = "/extensions/v2/metrics"
)

// Options name what the config does not: the objects and the image.
type Options struct {
	// Name prefixes every object (default "berth").
	Name string
	// Namespace of the objects; empty leaves it to kubectl/oc.
	Namespace string
	// Image is berth's image (see berth image build); required.
	Image string
	// StorageSize is the size of a claim Berth creates (storage.pvc without
	// a claim name); default "100Gi".
	StorageSize string
	// StorageClass of a created claim; empty: the cluster's default.
	StorageClass string
}

// Route is one entry of the operator's spec.routes.
type Route struct {
	// Name of the Route object.
	Name string `yaml:"name"`
	// Hostname is the route's host.
	Hostname string `yaml:"hostname"`
	// SecretName is a kubernetes.io/tls Secret with the host's certificate
	// (the Route references it as externalCertificate); empty: the
	// router's default certificate.
	SecretName string `yaml:"secretName"`
}

// PVC is the operator's spec.storage.pvc.
type PVC struct {
	// Claim is an existing PersistentVolumeClaim; empty: Berth renders one.
	Claim string `yaml:"claim"`
}

type operatorFields struct {
	Replicas     *int    `yaml:"replicas"`
	Routes       []Route `yaml:"routes"`
	DefaultRoute bool    `yaml:"defaultRoute"`
}

// plan is what the config says, worked out.
type plan struct {
	opts      Options
	replicas  int
	routes    []Route
	defRoute  bool
	pvc       *PVC
	serve     *config.Config
	serveYAML []byte
}

// Render turns a registry config (the operator's Config object or its spec)
// into YAML documents of Kubernetes objects, or every problem at once.
func Render(raw []byte, opts Options) ([]byte, error) {
	p, err := newPlan(raw, opts)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	for i, obj := range p.objects() {
		b, err := k8syaml.Marshal(obj)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			out.WriteString("---\n")
		}
		out.Write(b)
	}
	return out.Bytes(), nil
}

var dns1123 = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)

func validName(s string, max int) bool { return len(s) <= max && dns1123.MatchString(s) }

func newPlan(raw []byte, opts Options) (*plan, error) {
	if opts.Name == "" {
		opts.Name = "berth"
	}
	if opts.StorageSize == "" {
		opts.StorageSize = "100Gi"
	}
	var errs []error
	if !validName(opts.Name, 40) || strings.Contains(opts.Name, ".") {
		errs = append(errs, fmt.Errorf("name %q: want a DNS label of at most 40 characters (it prefixes the objects' names)", opts.Name))
	}
	if opts.Namespace != "" && (!validName(opts.Namespace, 63) || strings.Contains(opts.Namespace, ".")) {
		errs = append(errs, fmt.Errorf("namespace %q is not a DNS label", opts.Namespace))
	}
	if opts.Image == "" {
		errs = append(errs, errors.New("no image: name berth's image (built with berth image build)"))
	}

	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("invalid config: %w", err)
	}
	spec := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	if len(doc.Content) == 1 {
		spec = doc.Content[0]
	}
	if spec.Kind != yaml.MappingNode {
		return nil, errors.New("invalid config: not a mapping")
	}
	if kind := value(spec, "kind"); kind != nil {
		if kind.Value != "Config" || !strings.HasPrefix(scalar(spec, "apiVersion"), "imageregistry.operator.openshift.io/") {
			return nil, fmt.Errorf("kind %s (%s) is not an imageregistry.operator.openshift.io/v1 Config", kind.Value, scalar(spec, "apiVersion"))
		}
		if spec = value(spec, "spec"); spec == nil || spec.Kind != yaml.MappingNode {
			return nil, errors.New("the Config has no spec")
		}
	}

	p := &plan{opts: opts}
	// The deployment's own fields, out of what berth serve reads.
	var of operatorFields
	ofNode := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	for _, k := range []string{"replicas", "routes", "defaultRoute"} {
		if v := take(spec, k); v != nil {
			ofNode.Content = append(ofNode.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k}, v)
		}
	}
	if err := decodeStrict(ofNode, &of); err != nil {
		errs = append(errs, err)
	}
	p.replicas, p.routes, p.defRoute = 1, of.Routes, of.DefaultRoute
	if of.Replicas != nil {
		p.replicas = *of.Replicas
	}
	if p.replicas < 0 {
		errs = append(errs, fmt.Errorf("replicas: %d is negative", p.replicas))
	}

	// storage.pvc becomes a filesystem store on the mounted claim.
	if storage := value(spec, "storage"); storage != nil && storage.Kind == yaml.MappingNode {
		if v := take(storage, "pvc"); v != nil {
			p.pvc = &PVC{}
			if err := decodeStrict(v, p.pvc); err != nil {
				errs = append(errs, fmt.Errorf("storage.pvc: %w", err))
			}
			if value(storage, "filesystem") != nil {
				errs = append(errs, errors.New("storage: pvc and filesystem are both set; in a cluster use pvc"))
			} else {
				set(storage, "filesystem", mapping("rootDirectory", DataDir))
			}
		} else if value(storage, "filesystem") != nil {
			errs = append(errs, errors.New("storage.filesystem is a directory on one machine; in a cluster use storage.pvc (a claim), emptyDir, s3, gcs or azure"))
		}
	}

	// Paths and secrets: what the pod mounts, and what must not ride in a
	// ConfigMap.
	if a := scalar(spec, "addr"); a != "" && a != ":"+strconv.Itoa(Port) {
		errs = append(errs, fmt.Errorf("addr %q: the container listens on :%d; leave addr out", a, Port))
	}
	if scalar(spec, "httpSecret") != "" {
		errs = append(errs, errors.New("httpSecret: the config goes into a ConfigMap, which is no place for a secret; leave it out"))
	}
	if tls := value(spec, "tls"); tls != nil && tls.Kind == yaml.MappingNode {
		if value(tls, "certificates") != nil {
			errs = append(errs, errors.New("tls.certificates: in a cluster the pod has one serving certificate (the Secret "+opts.Name+"-tls); give routes[] their host certificates instead"))
		}
		if scalar(tls, "certFile") != "" || scalar(tls, "keyFile") != "" {
			set(tls, "certFile", scalarNode(TLSDir+"/tls.crt"))
			set(tls, "keyFile", scalarNode(TLSDir+"/tls.key"))
		}
	}
	if m := value(spec, "metrics"); m != nil && m.Kind == yaml.MappingNode && scalar(m, "secret") != "" {
		errs = append(errs, fmt.Errorf("metrics.secret: the config goes into a ConfigMap, which is no place for a secret; leave it out and put %s in the Secret %s-private-configuration (berth and the ServiceMonitor read it there)", config.MetricsSecretEnv, opts.Name))
	}
	if n := value(spec, "notifications"); n != nil && n.Kind == yaml.MappingNode {
		if eps := value(n, "endpoints"); eps != nil && eps.Kind == yaml.SequenceNode {
			for i, ep := range eps.Content {
				hs := value(ep, "headers")
				if ep.Kind != yaml.MappingNode || hs == nil || hs.Kind != yaml.MappingNode {
					continue
				}
				for j := 0; j+1 < len(hs.Content); j += 2 {
					if h := hs.Content[j].Value; credentialHeader(h) {
						errs = append(errs, fmt.Errorf("notifications.endpoints[%d].headers.%s: the config goes into a ConfigMap, which is no place for a credential; give it as headersFromEnv: {%s: VARIABLE} and put VARIABLE in the Secret %s-private-configuration", i, h, h, opts.Name))
					}
				}
			}
		}
	}
	if auth := value(spec, "auth"); auth != nil && auth.Kind == yaml.MappingNode {
		if scalar(auth, "tokenSecret") != "" {
			errs = append(errs, errors.New("auth.tokenSecret: the config goes into a ConfigMap, which is no place for a secret; leave it out"))
		}
		if scalar(auth, "htpasswd") != "" {
			set(auth, "htpasswd", scalarNode(HtpasswdDir+"/htpasswd"))
		}
	}

	if len(spec.Content) > 0 {
		b, err := marshalNode(spec)
		if err != nil {
			return nil, err
		}
		p.serveYAML = b
	}
	serve, err := config.Parse(bytes.NewReader(p.serveYAML))
	if err != nil {
		errs = append(errs, err)
	} else {
		p.serve = serve
		if serve.Storage.S3 != nil || serve.Storage.GCS != nil || serve.Storage.Azure != nil {
			if value(spec, "metadataDirectory") == nil {
				set(spec, "metadataDirectory", scalarNode(DataDir))
				b, err := marshalNode(spec)
				if err != nil {
					return nil, err
				}
				p.serveYAML = b
			}
		}
		errs = append(errs, p.check()...)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return p, nil
}

// check holds the rules a cluster adds to serve's own.
func (p *plan) check() []error {
	var errs []error
	s := p.serve.Storage
	hasStorage := p.pvc != nil || s.EmptyDir != nil || s.S3 != nil || s.GCS != nil || s.Azure != nil
	if !hasStorage {
		errs = append(errs, errors.New("storage: set one of pvc, emptyDir, s3, gcs or azure"))
	}
	if p.replicas > 1 {
		switch {
		case s.EmptyDir != nil:
			// As the operator: each replica would hold its own images.
			errs = append(errs, fmt.Errorf("replicas: %d with emptyDir storage: every replica would keep its own images; use one replica, or pvc, s3, gcs or azure", p.replicas))
		case p.serve.MetadataDatabase == "":
			errs = append(errs, fmt.Errorf("replicas: %d need shared metadata: set metadataDatabase (PostgreSQL; its password from BERTH_METADATA_DSN in the Secret %s-private-configuration)", p.replicas, p.opts.Name))
		}
	}
	if p.pvc != nil && p.pvc.Claim != "" && !validName(p.pvc.Claim, 253) {
		errs = append(errs, fmt.Errorf("storage.pvc.claim %q is not a valid object name", p.pvc.Claim))
	}
	seen := map[string]bool{}
	for i, r := range p.routes {
		switch {
		case r.Name == "":
			errs = append(errs, fmt.Errorf("routes[%d].name is required", i))
		case !validName(r.Name, 253):
			errs = append(errs, fmt.Errorf("routes[%d].name %q is not a valid object name", i, r.Name))
		case seen[r.Name] || (p.defRoute && r.Name == p.opts.Name+"-default-route"):
			errs = append(errs, fmt.Errorf("routes[%d].name %q is used twice", i, r.Name))
		}
		seen[r.Name] = true
		if r.Hostname == "" || !validName(r.Hostname, 253) {
			errs = append(errs, fmt.Errorf("routes[%d].hostname %q: want a DNS name", i, r.Hostname))
		}
		if r.SecretName != "" && !validName(r.SecretName, 253) {
			errs = append(errs, fmt.Errorf("routes[%d].secretName %q is not a valid object name", i, r.SecretName))
		}
	}
	return errs
}

func (p *plan) tls() bool { return p.serve.TLS.CertFile != "" }

func (p *plan) meta(name string) objectMeta {
	return objectMeta{Name: name, Namespace: p.opts.Namespace, Labels: p.labels()}
}

func (p *plan) labels() map[string]string {
	return map[string]string{
		"app.kubernetes.io/name":       "berth",
		"app.kubernetes.io/instance":   p.opts.Name,
		"app.kubernetes.io/component":  "registry",
		"app.kubernetes.io/managed-by": "berth-deploy-render",
	}
}

func (p *plan) selector() map[string]string {
	return map[string]string{"app.kubernetes.io/name": "berth", "app.kubernetes.io/instance": p.opts.Name}
}

func (p *plan) claimName() string {
	if p.pvc.Claim != "" {
		return p.pvc.Claim
	}
	return p.opts.Name + "-storage"
}

func (p *plan) objects() []any {
	name := p.opts.Name
	var objs []any
	cm := configMap{typeMeta: typeMeta{"v1", "ConfigMap"}, Metadata: p.meta(name + "-config"), Data: map[string]string{ConfigFile: string(p.serveYAML)}}
	objs = append(objs, cm)
	if p.pvc != nil && p.pvc.Claim == "" {
		mode := "ReadWriteOnce"
		if p.replicas > 1 {
			mode = "ReadWriteMany"
		}
		c := pvc{typeMeta: typeMeta{"v1", "PersistentVolumeClaim"}, Metadata: p.meta(p.claimName()), Spec: pvcSpec{
			AccessModes: []string{mode},
			Resources:   resourceRequirements{Requests: map[string]string{"storage": p.opts.StorageSize}},
		}}
		if p.opts.StorageClass != "" {
			sc := p.opts.StorageClass
			c.Spec.StorageClassName = &sc
		}
		objs = append(objs, c)
	}
	objs = append(objs, p.deployment())

	svc := service{typeMeta: typeMeta{"v1", "Service"}, Metadata: p.meta(name), Spec: serviceSpec{
		Type:     "ClusterIP",
		Selector: p.selector(),
		Ports:    []servicePort{{Name: "http", Port: Port, TargetPort: "http", Protocol: "TCP"}},
	}}
	if p.tls() {
		svc.Spec.Ports[0].Name, svc.Spec.Ports[0].TargetPort = "https", "https"
		// OpenShift's service CA issues the serving certificate.
		svc.Metadata.Annotations = map[string]string{"service.beta.openshift.io/serving-cert-secret-name": name + "-tls"}
	}
	objs = append(objs, svc)

	termination := "edge"
	if p.tls() {
		termination = "reencrypt"
	}
	newRoute := func(rname, host, secret string) route {
		r := route{typeMeta: typeMeta{"route.openshift.io/v1", "Route"}, Metadata: p.meta(rname), Spec: routeSpec{
			Host: host,
			To:   routeTarget{Kind: "Service", Name: name, Weight: 100},
			Port: routePort{TargetPort: svc.Spec.Ports[0].Name},
			TLS:  routeTLSConfig{Termination: termination, InsecureEdgeTerminationPolicy: "Redirect"},
		}}
		if secret != "" {
			r.Spec.TLS.ExternalCertificate = &localObjectReference{Name: secret}
		}
		return r
	}
	if p.defRoute {
		objs = append(objs, newRoute(name+"-default-route", "", ""))
	}
	var secrets []string
	for _, r := range p.routes {
		objs = append(objs, newRoute(r.Name, r.Hostname, r.SecretName))
		if r.SecretName != "" && !slices.Contains(secrets, r.SecretName) {
			secrets = append(secrets, r.SecretName)
		}
	}
	if len(secrets) > 0 {
		// The router reads an externalCertificate Secret itself, and only
		// with a grant for exactly those Secrets.
		objs = append(objs,
			role{typeMeta: typeMeta{"rbac.authorization.k8s.io/v1", "Role"}, Metadata: p.meta(name + "-route-certificates"), Rules: []policyRule{{
				APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "list", "watch"}, ResourceNames: secrets,
			}}},
			roleBinding{typeMeta: typeMeta{"rbac.authorization.k8s.io/v1", "RoleBinding"}, Metadata: p.meta(name + "-route-certificates"),
				RoleRef:  roleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: name + "-route-certificates"},
				Subjects: []subject{{Kind: "ServiceAccount", Name: "router", Namespace: "openshift-ingress"}},
			})
	}

	ep := monitorEndpoint{Port: svc.Spec.Ports[0].Name, Path: MetricsPath, Scheme: "http", Interval: "30s"}
	if p.tls() {
		ep.Scheme = "https"
		ep.TLSConfig = &tlsConfig{CAFile: "/etc/prometheus/configmaps/serving-certs-ca-bundle/service-ca.crt"}
		if p.opts.Namespace != "" {
			ep.TLSConfig.ServerName = name + "." + p.opts.Namespace + ".svc"
		}
	}
	if p.serve.Auth != nil && !p.serve.Metrics.Open {
		// With access control on, metrics need the metrics secret (any
		// user name): berth reads it from BERTH_METRICS_SECRET in the
		// private configuration Secret, and Prometheus from the same key.
		key := secretKeySelector{Name: name + "-private-configuration", Key: config.MetricsSecretEnv}
		ep.BasicAuth = &basicAuth{Username: key, Password: key}
	}
	objs = append(objs, serviceMonitor{typeMeta: typeMeta{"monitoring.coreos.com/v1", "ServiceMonitor"}, Metadata: p.meta(name), Spec: serviceMonitorSpec{
		Selector:  labelSelector{MatchLabels: p.selector()},
		Endpoints: []monitorEndpoint{ep},
	}})
	return objs
}

func (p *plan) deployment() deployment {
	name := p.opts.Name
	sum := sha256.Sum256(p.serveYAML)
	scheme := "HTTP"
	if p.tls() {
		scheme = "HTTPS"
	}
	optional := true
	c := container{
		Name:  "registry",
		Image: p.opts.Image,
		Args:  []string{"serve", "--config", ConfigDir + "/" + ConfigFile},
		Ports: []containerPort{{Name: "http", ContainerPort: Port, Protocol: "TCP"}},
		// Storage keys, the PostgreSQL DSN: the operator's variable names,
		// from one Secret the cluster's owner creates.
		EnvFrom:   []envFromSource{{SecretRef: &secretEnvSource{Name: name + "-private-configuration", Optional: &optional}}},
		Resources: resourceRequirements{Requests: map[string]string{"cpu": "100m", "memory": "256Mi"}},
		ReadinessProbe: probe{
			HTTPGet: httpGetAction{Path: "/healthz", Port: "http", Scheme: scheme}, PeriodSeconds: 10, TimeoutSeconds: 5, FailureThreshold: 3,
		},
		LivenessProbe: probe{
			HTTPGet: httpGetAction{Path: "/healthz", Port: "http", Scheme: scheme}, InitialDelaySeconds: 10, PeriodSeconds: 10, TimeoutSeconds: 5, FailureThreshold: 6,
		},
		SecurityContext: containerSecurityContext{ReadOnlyRootFilesystem: true, Capabilities: capabilities{Drop: []string{"ALL"}}},
		VolumeMounts: []volumeMount{
			{Name: "config", MountPath: ConfigDir, ReadOnly: true},
			{Name: "data", MountPath: DataDir},
			{Name: "tmp", MountPath: "/tmp"},
		},
	}
	if p.tls() {
		c.Ports[0].Name = "https"
		c.ReadinessProbe.HTTPGet.Port, c.LivenessProbe.HTTPGet.Port = "https", "https"
	}
	vols := []volume{{Name: "config", ConfigMap: &configMapVolume{Name: name + "-config"}}}
	if p.pvc != nil {
		vols = append(vols, volume{Name: "data", PersistentVolumeClaim: &pvcVolume{ClaimName: p.claimName()}})
	} else {
		vols = append(vols, volume{Name: "data", EmptyDir: &emptyDirVolumeSource{}})
	}
	vols = append(vols, volume{Name: "tmp", EmptyDir: &emptyDirVolumeSource{}})
	if p.tls() {
		c.VolumeMounts = append(c.VolumeMounts, volumeMount{Name: "tls", MountPath: TLSDir, ReadOnly: true})
		vols = append(vols, volume{Name: "tls", Secret: &secretVolume{SecretName: name + "-tls"}})
	}
	if p.serve.Auth != nil && p.serve.Auth.Htpasswd != "" {
		c.VolumeMounts = append(c.VolumeMounts, volumeMount{Name: "htpasswd", MountPath: HtpasswdDir, ReadOnly: true})
		vols = append(vols, volume{Name: "htpasswd", Secret: &secretVolume{SecretName: name + "-htpasswd", Items: []keyToPath{{Key: "htpasswd", Path: "htpasswd"}}}})
	}
	strategy := "RollingUpdate"
	if p.pvc != nil && p.replicas <= 1 {
		// A ReadWriteOnce claim cannot be held by the old and new pod.
		strategy = "Recreate"
	}
	tmplMeta := objectMeta{Labels: p.labels(), Annotations: map[string]string{"berth.dev/config-sha256": hex.EncodeToString(sum[:])}}
	return deployment{typeMeta: typeMeta{"apps/v1", "Deployment"}, Metadata: p.meta(name), Spec: deploymentSpec{
		Replicas: p.replicas,
		Selector: labelSelector{MatchLabels: p.selector()},
		Strategy: deploymentStrategy{Type: strategy},
		Template: podTemplate{Metadata: tmplMeta, Spec: podSpec{
			SecurityContext:               podSecurityContext{RunAsNonRoot: true, SeccompProfile: seccompProfile{Type: "RuntimeDefault"}},
			TerminationGracePeriodSeconds: 45,
			Containers:                    []container{c},
			Volumes:                       vols,
		}},
	}}
}

// YAML node helpers: a mapping node's Content is key, value, key, value…

// credentialHeader tells whether a header likely carries a credential.
func credentialHeader(name string) bool {
	n := strings.ToLower(name)
	switch n {
	case "authorization", "proxy-authorization", "cookie":
		return true
	}
	for _, w := range []string{"token", "secret", "key", "password", "auth"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

func value(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func scalar(m *yaml.Node, key string) string {
	if v := value(m, key); v != nil && v.Kind == yaml.ScalarNode {
		return v.Value
	}
	return ""
}

func take(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			v := m.Content[i+1]
			m.Content = append(m.Content[:i], m.Content[i+2:]...)
			return v
		}
	}
	return nil
}

func set(m *yaml.Node, key string, v *yaml.Node) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content[i+1] = v
			return
		}
	}
	m.Content = append(m.Content, scalarNode(key), v)
}

func scalarNode(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
}

func mapping(k, v string) *yaml.Node {
	return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: []*yaml.Node{scalarNode(k), scalarNode(v)}}
}

func marshalNode(n *yaml.Node) ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(n); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func decodeStrict(n *yaml.Node, v any) error {
	b, err := yaml.Marshal(n)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		msg := strings.TrimPrefix(err.Error(), "yaml: unmarshal errors:\n  ")
		msg = strings.ReplaceAll(msg, " in type deploy.operatorFields", "")
		msg = strings.ReplaceAll(msg, " in type deploy.Route", " in routes")
		msg = strings.ReplaceAll(msg, " in type deploy.PVC", "")
		return errors.New("invalid config: " + msg)
	}
	return nil
}
