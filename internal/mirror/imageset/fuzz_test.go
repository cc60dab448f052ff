package imageset

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// FuzzParseImageSetConfiguration: the parser never panics; every problem
// names the file and a line; what it accepts, written back out (as JSON,
// which is YAML), parses again to the same value.
func FuzzParseImageSetConfiguration(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		head + "mirror: {}\n",
		head + "mirror:\n  additionalImages:\n  - &a {name: quay.io/a/b:1}\n  - *a\n",
		head + "mirror:\n  platform: {channels: [{name: stable-4.16, minVersion: 4.16.1, maxVersion: 4.16.3}]}\n",
		head + "mirror:\n  operators:\n  - catalog: oci://x\n    packages: [{name: p, channels: [{name: c, minVersion: '1.0'}]}]\n",
		"a: &a [*a]\n",
		"kind: [\n",
		"---\n---\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		watchdog := time.AfterFunc(10*time.Second, func() { panic(fmt.Sprintf("parse took over 10s on %q", data)) })
		defer watchdog.Stop()
		c, err := ParseImageSetConfiguration("fuzz.yaml", data)
		if err != nil {
			ps := Problems(err)
			if len(ps) == 0 {
				t.Fatalf("error without problems: %v", err)
			}
			for _, p := range ps {
				if p.File != "fuzz.yaml" || p.Line < 1 || p.Message == "" {
					t.Fatalf("problem without file, line or message: %#v", p)
				}
			}
			return
		}
		out, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseImageSetConfiguration("again.yaml", out)
		if err != nil {
			t.Fatalf("accepted %q, but not its own rendering %s: %v", data, out, err)
		}
		if diff := cmp.Diff(c, again, cmpopts.IgnoreUnexported(ImageSetConfiguration{}), cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("round trip (-first +again):\n%s", diff)
		}
	})
}
