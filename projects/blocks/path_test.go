package blocks

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestCheckRelativePath(t *testing.T) {
	tests := []struct {
		rel   string
		valid bool
	}{
		{"data.csv", true},
		{"dir/data.csv", true},
		{"./data.csv", true},
		{"a/../data.csv", true},
		{"", false},
		{".", false},
		{"a/..", false},
		{"..", false},
		{"../data.csv", false},
		{"a/../../data.csv", false},
		{"/etc/passwd", false},
		{`\etc\passwd`, false},
	}
	for _, tt := range tests {
		err := CheckRelativePath(tt.rel)
		if tt.valid && err != nil {
			t.Errorf("CheckRelativePath(%q) = %v, want nil", tt.rel, err)
		}
		if !tt.valid && !errors.Is(err, ErrInvalidPath) {
			t.Errorf("CheckRelativePath(%q) = %v, want ErrInvalidPath", tt.rel, err)
		}
	}
}

// pathFixture is a root directory with a file inside, a secret file
// outside and symbolic links for escape tests.
type pathFixture struct {
	root, outside string
}

func setupPaths(t *testing.T) pathFixture {
	t.Helper()
	base := t.TempDir()
	fixture := pathFixture{root: filepath.Join(base, "root"), outside: filepath.Join(base, "outside")}
	for _, dir := range []string{fixture.root, fixture.outside, filepath.Join(fixture.root, "sub")} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(path, text string) {
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(fixture.root, "inside.csv"), "a\n1\n")
	write(filepath.Join(fixture.outside, "secret.csv"), "secret\n42\n")
	links := map[string]string{
		filepath.Join(fixture.root, "escape.csv"):     filepath.Join(fixture.outside, "secret.csv"),
		filepath.Join(fixture.root, "escapedir"):      fixture.outside,
		filepath.Join(fixture.root, "dangling.csv"):   filepath.Join(fixture.outside, "missing.csv"),
		filepath.Join(fixture.root, "sub", "up.csv"):  filepath.Join(fixture.root, "inside.csv"),
		filepath.Join(fixture.root, "sub", "rel.csv"): "../../outside/secret.csv",
	}
	for link, target := range links {
		if err := os.Symlink(target, link); err != nil {
			t.Skipf("symbolic links are not available: %v", err)
		}
	}
	return fixture
}

func TestResolvePathInside(t *testing.T) {
	fixture := setupPaths(t)
	for _, rel := range []string{"inside.csv", "sub/up.csv", "sub/new/file.csv", "new.csv"} {
		resolved, err := ResolvePath(fixture.root, rel)
		if err != nil {
			t.Errorf("ResolvePath(%q) = %v", rel, err)
			continue
		}
		realRoot, _ := filepath.EvalSymlinks(fixture.root)
		if !strings.HasPrefix(resolved, realRoot+string(filepath.Separator)) {
			t.Errorf("ResolvePath(%q) = %q, not under %q", rel, resolved, realRoot)
		}
	}
}

func TestResolvePathSymlinkEscapes(t *testing.T) {
	fixture := setupPaths(t)
	for _, rel := range []string{"escape.csv", "escapedir/secret.csv", "escapedir/new.csv", "sub/rel.csv", "dangling.csv"} {
		_, err := ResolvePath(fixture.root, rel)
		if !errors.Is(err, ErrInvalidPath) {
			t.Errorf("ResolvePath(%q) = %v, want ErrInvalidPath", rel, err)
		}
	}
}

func TestResolvePathTextEscapes(t *testing.T) {
	fixture := setupPaths(t)
	for _, rel := range []string{"../outside/secret.csv", "/etc/passwd", ""} {
		if _, err := ResolvePath(fixture.root, rel); !errors.Is(err, ErrInvalidPath) {
			t.Errorf("ResolvePath(%q) = %v, want ErrInvalidPath", rel, err)
		}
	}
}

func TestReadBlocksRejectSymlinkEscape(t *testing.T) {
	fixture := setupPaths(t)
	env := &Env{FilesDir: fixture.root}
	for _, typ := range []string{"csv.read", "json.read"} {
		block := compileKind(t, typ, `{"path": "escape.csv"}`, CompileContext{})
		err := runFails(t, block, env)
		if !errors.Is(err, ErrInvalidPath) {
			t.Errorf("%s: error = %v, want ErrInvalidPath", typ, err)
		}
	}
}

func TestWriteBlocksRejectSymlinkEscape(t *testing.T) {
	fixture := setupPaths(t)
	env := &Env{OutputDir: fixture.root}
	input := newTable([]string{"a"}, []any{int64(1)})
	for _, typ := range []string{"csv.write", "json.write"} {
		block := compileKind(t, typ, `{"path": "escapedir/out.csv"}`, CompileContext{})
		err := runFails(t, block, env, input)
		if !errors.Is(err, ErrInvalidPath) {
			t.Errorf("%s: error = %v, want ErrInvalidPath", typ, err)
		}
	}
	if _, err := os.Stat(filepath.Join(fixture.outside, "out.csv")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a file was written outside the root: %v", err)
	}
}

func TestPathOptionPlaceholders(t *testing.T) {
	deferred := CompileContext{Deferred: true}
	for _, typ := range []string{"csv.read", "json.read", "csv.write", "json.write"} {
		compileKind(t, typ, `{"path": "${region}/data.csv"}`, deferred)
		compileKind(t, typ, `{"path": "${file}"}`, deferred)
		compileKind(t, typ, `{"path": "out-${year}.csv"}`, deferred)

		problems := compileFails(t, typ, `{"path": "../${x}.csv"}`, deferred)
		if !hasProblem(problems, "path", "leaves its directory") {
			t.Errorf("%s: problems = %v", typ, problems)
		}
		problems = compileFails(t, typ, `{"path": "/${x}.csv"}`, deferred)
		if !hasProblem(problems, "path", "absolute") {
			t.Errorf("%s: problems = %v", typ, problems)
		}
	}
}

func TestPathOptionCheckedAsIs(t *testing.T) {
	// Without Deferred, "${x}" is part of a file name, not a placeholder.
	compileKind(t, "csv.read", `{"path": "${x}.csv"}`, CompileContext{})
	for _, path := range []string{"../data.csv", "/etc/passwd", "a/../../b.csv", "."} {
		problems := compileFails(t, "csv.read", `{"path": "`+path+`"}`, CompileContext{})
		if !hasProblem(problems, "path", "invalid path") {
			t.Errorf("path %q: problems = %v", path, problems)
		}
	}
}

func TestOpenRejectsFIFO(t *testing.T) {
	root := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(root, "pipe.csv"), 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	file, err := openInRoot(root, "pipe.csv")
	if err == nil {
		file.Close()
		t.Fatal("opening a FIFO succeeded, want an error")
	}
	if !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("error %q does not say the file is not regular", err)
	}
}
