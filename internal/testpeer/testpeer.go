package testpeer

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Need returns the path of the named peer program, failing the test when it
// is not installed.
func Need(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("peer %q is not installed (run scripts/peers.sh and put its bin directory on PATH, or use scripts/test): %v", name, err)
	}
	return p
}

// FreeAddr returns a loopback address with a port that was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// WaitHTTP polls url until it answers (any status) or the deadline passes.
func WaitHTTP(t testing.TB, url string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer within %s: %v", url, within, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// StartDistribution runs the CNCF Distribution reference registry on a
// loopback port with filesystem storage under a temporary directory, deletes
// enabled, and returns its host:port. It is stopped when the test ends.
func StartDistribution(t testing.TB) string {
	t.Helper()
	addr, _ := StartStoppableDistribution(t)
	return addr
}

// StartStoppableDistribution is StartDistribution with a stop function, for
// a test that takes the upstream away mid-way (stopping twice is harmless;
// the test's cleanup stops it too).
func StartStoppableDistribution(t testing.TB) (addr string, stop func()) {
	t.Helper()
	bin := Need(t, "registry")
	dir := t.TempDir()
	addr = FreeAddr(t)
	cfg := DistributionConfig(filepath.Join(dir, "data"), addr)
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", cfgPath)
	cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none")
	logf, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start distribution: %v", err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			logf.Close()
		})
	}
	t.Cleanup(stop)
	WaitHTTP(t, "http://"+addr+"/v2/", 20*time.Second)
	return addr, stop
}

// DistributionConfig is a CNCF Distribution config storing under root,
// deletes enabled, listening on addr. It ends inside the http block, so a
// caller may append more of it ("  tls: ...") and then other top-level
// blocks (auth, proxy).
func DistributionConfig(root, addr string) string {
	return fmt.Sprintf(`version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
`, root, addr)
}

// MinIO is a running MinIO S3 server.
type MinIO struct {
	Endpoint  string // http://host:port
	AccessKey string
	SecretKey string
}

// StartMinIO runs a MinIO server on loopback with its data in a temporary
// directory, stopped when the test ends.
func StartMinIO(t testing.TB) MinIO {
	t.Helper()
	bin := Need(t, "minio")
	dir := t.TempDir()
	addr, console := FreeAddr(t), FreeAddr(t)
	m := MinIO{Endpoint: "http://" + addr, AccessKey: "berth-test", SecretKey: "berth-test-secret"}
	cmd := exec.Command(bin, "server", filepath.Join(dir, "data"), "--address", addr, "--console-address", console, "--quiet")
	cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+m.AccessKey, "MINIO_ROOT_PASSWORD="+m.SecretKey, "MINIO_BROWSER=off", "MINIO_UPDATE=off")
	logf, err := os.Create(filepath.Join(dir, "minio.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start minio: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logf.Close()
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(m.Endpoint + "/minio/health/live")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return m
			}
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "minio.log"))
			t.Fatalf("minio did not become live: %v\n%s", err, log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// FakeGCS is a running fake-gcs-server, a Google Cloud Storage emulator
// speaking the JSON API over plain HTTP.
type FakeGCS struct {
	Host string // host:port, the value for STORAGE_EMULATOR_HOST
}

// StartFakeGCS runs fake-gcs-server on loopback with its data in a temporary
// directory, stopped when the test ends.
func StartFakeGCS(t testing.TB) FakeGCS {
	t.Helper()
	bin := Need(t, "fake-gcs-server")
	dir := t.TempDir()
	addr := FreeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(bin, "-host", "127.0.0.1", "-port", port, "-scheme", "http",
		"-backend", "filesystem", "-filesystem-root", filepath.Join(dir, "data"),
		"-external-url", "http://"+addr, "-log-level", "warn",
		// The client library reads objects through the XML API, path style
		// on the emulator's host, which fake-gcs-server serves only for
		// its public host.
		"-public-host", addr)
	start(t, cmd, dir, "fake-gcs-server", "http://"+addr+"/storage/v1/b", http.StatusOK)
	return FakeGCS{Host: addr}
}

// Azurite is a running Azurite blob service, the Azure Storage emulator.
type Azurite struct {
	// Endpoint is the blob service URL, account included.
	Endpoint string
	// AccountName and AccountKey are the emulator's well-known development
	// account.
	AccountName, AccountKey string
}

// StartAzurite runs Azurite's blob service on loopback with its data in a
// temporary directory, stopped when the test ends.
func StartAzurite(t testing.TB) Azurite {
	t.Helper()
	bin := Need(t, "azurite-blob")
	dir := t.TempDir()
	addr := FreeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	a := Azurite{
		Endpoint:    "http://" + addr + "/devstoreaccount1",
		AccountName: "devstoreaccount1",
		AccountKey:  "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==",
	}
	cmd := exec.Command(bin, "--blobHost", "127.0.0.1", "--blobPort", port,
		"--location", filepath.Join(dir, "data"), "--skipApiVersionCheck", "--loose", "--disableTelemetry")
	// Any answer means it listens: the unauthenticated probe is refused.
	start(t, cmd, dir, "azurite", a.Endpoint+"?comp=list", 0)
	return a
}

// start runs cmd with its output in dir/name.log, kills it when the test
// ends, and waits until url answers with status want (0: any status).
func start(t testing.TB, cmd *exec.Cmd, dir, name, url string, want int) {
	t.Helper()
	logPath := filepath.Join(dir, name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		logf.Close()
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if want == 0 || resp.StatusCode == want {
				return
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(logPath)
			t.Fatalf("%s exited before it became live: %v\n%s", name, cmd.ProcessState, log)
		default:
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logPath)
			t.Fatalf("%s did not become live: %v\n%s", name, err, log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
