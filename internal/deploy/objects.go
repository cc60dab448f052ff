package deploy

// The subset of the Kubernetes API objects Berth renders, with the API's
// JSON field names. Tests hold them to k8s.io/api by strict decoding.

type typeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
}

type objectMeta struct {
	Name        string            `json:"name,omitempty"`
	Namespace   string            `json:"namespace,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

type labelSelector struct {
	MatchLabels map[string]string `json:"matchLabels"`
}

type configMap struct {
	typeMeta `json:",inline"`
	Metadata objectMeta        `json:"metadata"`
	Data     map[string]string `json:"data"`
}

type pvc struct {
	typeMeta `json:",inline"`
	Metadata objectMeta `json:"metadata"`
	Spec     pvcSpec    `json:"spec"`
}

type pvcSpec struct {
	AccessModes      []string             `json:"accessModes"`
	StorageClassName *string              `json:"storageClassName,omitempty"`
	Resources        resourceRequirements `json:"resources"`
}

type resourceRequirements struct {
	Requests map[string]string `json:"requests,omitempty"`
	Limits   map[string]string `json:"limits,omitempty"`
}

type service struct {
	typeMeta `json:",inline"`
	Metadata objectMeta  `json:"metadata"`
	Spec     serviceSpec `json:"spec"`
}

type serviceSpec struct {
	Type     string            `json:"type"`
	Selector map[string]string `json:"selector"`
	Ports    []servicePort     `json:"ports"`
}

type servicePort struct {
	Name       string `json:"name"`
	Port       int    `json:"port"`
	TargetPort string `json:"targetPort"`
	Protocol   string `json:"protocol"`
}

type deployment struct {
	typeMeta `json:",inline"`
	Metadata objectMeta     `json:"metadata"`
	Spec     deploymentSpec `json:"spec"`
}

type deploymentSpec struct {
	Replicas int                `json:"replicas"`
	Selector labelSelector      `json:"selector"`
	Strategy deploymentStrategy `json:"strategy"`
	Template podTemplate        `json:"template"`
}

type deploymentStrategy struct {
	Type string `json:"type"`
}

type podTemplate struct {
	Metadata objectMeta `json:"metadata"`
	Spec     podSpec    `json:"spec"`
}

type podSpec struct {
	SecurityContext               podSecurityContext `json:"securityContext"`
	TerminationGracePeriodSeconds int                `json:"terminationGracePeriodSeconds"`
	Containers                    []container        `json:"containers"`
	Volumes                       []volume           `json:"volumes"`
}

type podSecurityContext struct {
	RunAsNonRoot   bool           `json:"runAsNonRoot"`
	SeccompProfile seccompProfile `json:"seccompProfile"`
}

type seccompProfile struct {
	Type string `json:"type"`
}

type container struct {
	Name            string                   `json:"name"`
	Image           string                   `json:"image"`
	ImagePullPolicy string                   `json:"imagePullPolicy,omitempty"`
	Args            []string                 `json:"args"`
	Ports           []containerPort          `json:"ports"`
	EnvFrom         []envFromSource          `json:"envFrom,omitempty"`
	Resources       resourceRequirements     `json:"resources"`
	ReadinessProbe  probe                    `json:"readinessProbe"`
	LivenessProbe   probe                    `json:"livenessProbe"`
	SecurityContext containerSecurityContext `json:"securityContext"`
	VolumeMounts    []volumeMount            `json:"volumeMounts"`
}

type containerPort struct {
	Name          string `json:"name"`
	ContainerPort int    `json:"containerPort"`
	Protocol      string `json:"protocol"`
}

type envFromSource struct {
	SecretRef *secretEnvSource `json:"secretRef,omitempty"`
}

type secretEnvSource struct {
	Name     string `json:"name"`
	Optional *bool  `json:"optional,omitempty"`
}

type probe struct {
	HTTPGet             httpGetAction `json:"httpGet"`
	InitialDelaySeconds int           `json:"initialDelaySeconds,omitempty"`
	PeriodSeconds       int           `json:"periodSeconds"`
	TimeoutSeconds      int           `json:"timeoutSeconds"`
	FailureThreshold    int           `json:"failureThreshold"`
}

type httpGetAction struct {
	Path   string `json:"path"`
	Port   string `json:"port"`
	Scheme string `json:"scheme"`
}

type containerSecurityContext struct {
	AllowPrivilegeEscalation bool         `json:"allowPrivilegeEscalation"`
	ReadOnlyRootFilesystem   bool         `json:"readOnlyRootFilesystem"`
	Capabilities             capabilities `json:"capabilities"`
}

type capabilities struct {
	Drop []string `json:"drop"`
}

type volumeMount struct {
	Name      string `json:"name"`
	MountPath string `json:"mountPath"`
	ReadOnly  bool   `json:"readOnly,omitempty"`
}

type volume struct {
	Name                  string                `json:"name"`
	ConfigMap             *configMapVolume      `json:"configMap,omitempty"`
	Secret                *secretVolume         `json:"secret,omitempty"`
	PersistentVolumeClaim *pvcVolume            `json:"persistentVolumeClaim,omitempty"`
	EmptyDir              *emptyDirVolumeSource `json:"emptyDir,omitempty"`
}

type configMapVolume struct {
	Name string `json:"name"`
}

type secretVolume struct {
	SecretName string      `json:"secretName"`
	Items      []keyToPath `json:"items,omitempty"`
}

type keyToPath struct {
	Key  string `json:"key"`
	Path string `json:"path"`
}

type pvcVolume struct {
	ClaimName string `json:"claimName"`
}

type emptyDirVolumeSource struct {
	Medium    string `json:"medium,omitempty"`
	SizeLimit string `json:"sizeLimit,omitempty"`
}

// route is route.openshift.io/v1 Route.
type route struct {
	typeMeta `json:",inline"`
	Metadata objectMeta `json:"metadata"`
	Spec     routeSpec  `json:"spec"`
}

type routeSpec struct {
	Host string         `json:"host,omitempty"`
	To   routeTarget    `json:"to"`
	Port routePort      `json:"port"`
	TLS  routeTLSConfig `json:"tls"`
}

type routeTarget struct {
	Kind   string `json:"kind"`
	Name   string `json:"name"`
	Weight int    `json:"weight"`
}

type routePort struct {
	TargetPort string `json:"targetPort"`
}

type routeTLSConfig struct {
	Termination                   string                `json:"termination"`
	InsecureEdgeTerminationPolicy string                `json:"insecureEdgeTerminationPolicy"`
	ExternalCertificate           *localObjectReference `json:"externalCertificate,omitempty"`
}

type localObjectReference struct {
	Name string `json:"name"`
}

// serviceMonitor is monitoring.coreos.com/v1 ServiceMonitor.
type serviceMonitor struct {
	typeMeta `json:",inline"`
	Metadata objectMeta         `json:"metadata"`
	Spec     serviceMonitorSpec `json:"spec"`
}

type serviceMonitorSpec struct {
	Selector  labelSelector     `json:"selector"`
	Endpoints []monitorEndpoint `json:"endpoints"`
}

type monitorEndpoint struct {
	Port      string     `json:"port"`
	Path      string     `json:"path"`
	Scheme    string     `json:"scheme"`
	Interval  string     `json:"interval"`
	TLSConfig *tlsConfig `json:"tlsConfig,omitempty"`
	BasicAuth *basicAuth `json:"basicAuth,omitempty"`
}

// basicAuth is the ServiceMonitor's credentials, each a key of a Secret.
type basicAuth struct {
	Username secretKeySelector `json:"username"`
	Password secretKeySelector `json:"password"`
}

type secretKeySelector struct {
	Name string `json:"name"`
	Key  string `json:"key"`
}

type tlsConfig struct {
	ServerName string `json:"serverName,omitempty"`
	CAFile     string `json:"caFile,omitempty"`
}

type role struct {
	typeMeta `json:",inline"`
	Metadata objectMeta   `json:"metadata"`
	Rules    []policyRule `json:"rules"`
}

type policyRule struct {
	APIGroups     []string `json:"apiGroups"`
	Resources     []string `json:"resources"`
	Verbs         []string `json:"verbs"`
	ResourceNames []string `json:"resourceNames,omitempty"`
}

type roleBinding struct {
	typeMeta `json:",inline"`
	Metadata objectMeta `json:"metadata"`
	RoleRef  roleRef    `json:"roleRef"`
	Subjects []subject  `json:"subjects"`
}

type roleRef struct {
	APIGroup string `json:"apiGroup"`
	Kind     string `json:"kind"`
	Name     string `json:"name"`
}

type subject struct {
	Kind      string `json:"kind"`
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
}
