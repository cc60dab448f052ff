package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDeployRender(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "registry.yaml")
	if err := os.WriteFile(good, []byte("storage:\n  pvc: {}\ndefaultRoute: true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr, err := runBerth(t, "deploy", "render", "--config", good, "--image", "registry.example.com/berth/berth:1.0.0", "--namespace", "registry", "--storage-size", "20Gi")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	for _, want := range []string{"kind: ConfigMap", "kind: PersistentVolumeClaim", "storage: 20Gi", "kind: Deployment", "image: registry.example.com/berth/berth:1.0.0", "kind: Service", "kind: Route", "kind: ServiceMonitor", "namespace: registry"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("replicas: 2\nstorage:\n  emptyDir: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err = runBerth(t, "deploy", "render", "--config", bad, "--image", "x")
	if err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "emptyDir") {
		t.Errorf("emptyDir with two replicas: %v, want an error naming %s and emptyDir", err, bad)
	}
	if _, _, err := runBerth(t, "deploy", "render", "--image", "x"); err == nil || !strings.Contains(err.Error(), "--config") {
		t.Errorf("no --config: %v", err)
	}
}
