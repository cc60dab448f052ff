package testpeer

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Postgres is a running PostgreSQL server owned by one test.
type Postgres struct {
	// DSN names the database "berth", created at start.
	DSN string

	bin, sock, port string
	cred            *syscall.Credential
	seq             *atomic.Int64
}

// needPostgres returns the path of a PostgreSQL server program: from PATH,
// else from Debian's versioned directory /usr/lib/postgresql/VERSION/bin
// (the newest), failing the test when there is none.
func needPostgres(t testing.TB, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	found, _ := filepath.Glob(filepath.Join("/usr/lib/postgresql", "*", "bin", name))
	if len(found) == 0 {
		Need(t, name) // fails with the usual message
	}
	sort.Slice(found, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(found[i]))))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(found[j]))))
		return vi < vj
	})
	return found[len(found)-1]
}

// StartPostgres initialises a PostgreSQL cluster in a temporary directory,
// runs its server on a free loopback port (and a Unix socket in the same
// directory), creates the database "berth" and returns the server; it is
// stopped and removed when the test ends. PostgreSQL refuses to run as root,
// so under root the cluster belongs to the "postgres" account the package
// created. Settings favour speed over durability: it is a test server.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	initdb := needPostgres(t, "initdb")
	// PATH may hold links to a few of the programs; their siblings are
	// where the links lead.
	if p, err := filepath.EvalSymlinks(initdb); err == nil {
		initdb = p
	}
	bin := filepath.Dir(initdb)
	for _, p := range []string{"postgres", "createdb"} {
		if _, err := os.Stat(filepath.Join(bin, p)); err != nil {
			t.Fatalf("peer PostgreSQL: %s has initdb but no %s", bin, p)
		}
	}
	// Not t.TempDir(): its parents are private to the test's user, and
	// the server may run as another.
	dir, err := os.MkdirTemp("", "berth-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	pg := &Postgres{bin: bin, sock: dir, seq: new(atomic.Int64)}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("peer PostgreSQL: running as root needs a postgres account to own the cluster (apt-get install postgresql creates it): %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		pg.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	data := filepath.Join(dir, "data")
	if out, err := pg.command(initdb, "-D", data, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C").CombinedOutput(); err != nil {
		t.Fatalf("peer PostgreSQL: initdb: %v\n%s", err, out)
	}
	_, pg.port, _ = net.SplitHostPort(FreeAddr(t))
	cmd := pg.command(filepath.Join(bin, "postgres"), "-D", data, "-k", dir, "-p", pg.port, "-h", "127.0.0.1",
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=300", "-c", "dynamic_shared_memory_type=mmap")
	logPath := filepath.Join(dir, "postgres.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("peer PostgreSQL: start postgres: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		// SIGINT is PostgreSQL's fast shutdown: disconnect clients, stop.
		_ = cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		logf.Close()
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := pg.createdb("berth")
		if err == nil {
			break
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(logPath)
			t.Fatalf("peer PostgreSQL: postgres exited before it accepted connections: %v\n%s", cmd.ProcessState, log)
		default:
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logPath)
			t.Fatalf("peer PostgreSQL: not accepting connections: %v\n%s\n%s", err, out, log)
		}
		time.Sleep(100 * time.Millisecond)
	}
	pg.DSN = pg.dsn("berth")
	return pg
}

// NewDatabase creates another, empty database on the server and returns its
// DSN.
func (pg *Postgres) NewDatabase(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("berth%d", pg.seq.Add(1))
	if out, err := pg.createdb(name); err != nil {
		t.Fatalf("peer PostgreSQL: createdb %s: %v\n%s", name, err, out)
	}
	return pg.dsn(name)
}

func (pg *Postgres) dsn(db string) string {
	return "postgres://postgres@127.0.0.1:" + pg.port + "/" + db + "?sslmode=disable"
}

func (pg *Postgres) createdb(name string) ([]byte, error) {
	return pg.command(filepath.Join(pg.bin, "createdb"), "-h", pg.sock, "-p", pg.port, "-U", "postgres", name).CombinedOutput()
}

// command runs a PostgreSQL program as the cluster's owner.
func (pg *Postgres) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Dir = pg.sock
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if pg.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: pg.cred}
	}
	return cmd
}
