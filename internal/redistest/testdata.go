package redistest

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// Fixture returns the path of name under the repository's testdata/rdb: "redis-7.0.15.rdb",
// "cases/hash.rdb", a glob pattern such as "cases/*.rdb", or "" for the directory itself. The
// repository is found by walking up from the working directory (the package's directory, under
// go test) to the directory holding go.mod, so the path is the same from every package. A
// repository without testdata/rdb fails the test; name itself is not checked (it may be a
// pattern).
func Fixture(t testing.TB, name string) string {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatalf("fixture %s: %v", name, err)
	}
	dir := filepath.Join(root, "testdata", "rdb")
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		t.Fatalf("fixture %s: the fixtures directory %s is missing (it is part of the repository: a partial checkout?): %v", name, dir, err)
	}
	if name == "" {
		return dir
	}
	return filepath.Join(dir, filepath.FromSlash(name))
}

// moduleRoot is the nearest directory at or above the working directory that holds go.mod.
func moduleRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("module root: %w", err)
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("module root: no go.mod in %s or above", wd)
		}
	}
}
