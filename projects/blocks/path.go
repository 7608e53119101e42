package blocks

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// ErrInvalidPath is wrapped by every error that rejects a path because of
// its text or because it leads outside its directory.
var ErrInvalidPath = errors.New("invalid path")

// CheckRelativePath returns an error wrapping ErrInvalidPath unless rel is
// a non-empty relative path that stays inside its directory after
// filepath.Clean. It looks only at the text, so symbolic links are left to
// ResolvePath.
func CheckRelativePath(rel string) error {
	if rel == "" {
		return fmt.Errorf("%w: the path is empty", ErrInvalidPath)
	}
	native := filepath.FromSlash(rel)
	if filepath.IsAbs(native) || strings.HasPrefix(rel, "/") || strings.HasPrefix(rel, `\`) ||
		filepath.VolumeName(native) != "" {
		return fmt.Errorf("%w: %q is absolute; give a path relative to the directory", ErrInvalidPath, rel)
	}
	clean := filepath.Clean(native)
	if clean == "." {
		return fmt.Errorf("%w: %q names the directory itself, not a file", ErrInvalidPath, rel)
	}
	if clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) {
		return fmt.Errorf("%w: %q leaves its directory", ErrInvalidPath, rel)
	}
	if !filepath.IsLocal(clean) {
		return fmt.Errorf("%w: %q is not a local file name", ErrInvalidPath, rel)
	}
	return nil
}

// ResolvePath returns the absolute path that rel names inside root, with
// symbolic links resolved. It rejects what CheckRelativePath rejects, and
// also a path whose deepest existing part resolves outside root or is a
// symbolic link to a missing target. The rest of the path may not exist
// yet, as when a file is about to be written. The check is made once, so
// it misses a link created afterwards. The blocks therefore also open
// files through os.Root.
func ResolvePath(root, rel string) (string, error) {
	if err := CheckRelativePath(rel); err != nil {
		return "", err
	}
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return "", fmt.Errorf("resolving directory: %w", err)
	}
	realRoot, err = filepath.Abs(realRoot)
	if err != nil {
		return "", fmt.Errorf("resolving directory: %w", err)
	}

	target := filepath.Join(realRoot, filepath.Clean(filepath.FromSlash(rel)))
	resolved, err := resolveExisting(target)
	if err != nil {
		return "", fmt.Errorf("%w: %q: %w", ErrInvalidPath, rel, err)
	}
	inside, err := filepath.Rel(realRoot, resolved)
	if err != nil || !filepath.IsLocal(inside) {
		return "", fmt.Errorf("%w: %q leads outside its directory through a symbolic link", ErrInvalidPath, rel)
	}
	return resolved, nil
}

// resolveExisting resolves symbolic links in the deepest existing
// ancestor of path and appends the missing rest unchanged.
func resolveExisting(path string) (string, error) {
	current, missing := path, ""
	for {
		real, err := filepath.EvalSymlinks(current)
		if err == nil {
			return filepath.Join(real, missing), nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		if _, statErr := os.Lstat(current); statErr == nil {
			return "", errors.New("a symbolic link in the path points to a missing target")
		}
		parent := filepath.Dir(current)
		if parent == current {
			return "", err
		}
		missing = filepath.Join(filepath.Base(current), missing)
		current = parent
	}
}

// path reads the path option name and checks its text. In a
// deferred compile each ${name} placeholder is checked as a plain file
// name, so "${region}/data.csv" passes and "../${x}.csv" does not.
func (r *optionReader) path(name string) string {
	rel := r.text(name, true)
	if rel == "" {
		return ""
	}
	checked := rel
	if r.cc.Deferred {
		checked = placeholderPattern.ReplaceAllString(rel, "placeholder")
	}
	if err := CheckRelativePath(checked); err != nil {
		r.addProblem(name, "%v", err)
	}
	return rel
}

// openInRoot opens rel for reading inside root after ResolvePath accepts
// it. Opening goes through os.Root, so a symbolic link swapped in after
// the check still cannot lead outside root.
func openInRoot(root, rel string) (*os.File, error) {
	if _, err := ResolvePath(root, rel); err != nil {
		return nil, err
	}
	dir, err := os.OpenRoot(root)
	if err != nil {
		return nil, fmt.Errorf("opening directory: %w", err)
	}
	defer dir.Close()

	// O_NONBLOCK keeps the open of a FIFO from waiting for a writer, where
	// no cancellation could reach it; regular files ignore the flag.
	file, err := dir.OpenFile(filepath.FromSlash(rel), os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	info, err := file.Stat()
	if err != nil {
		file.Close()
		return nil, err
	}
	if !info.Mode().IsRegular() {
		file.Close()
		return nil, fmt.Errorf("%s is not a regular file", rel)
	}
	return file, nil
}

// writeInRoot creates rel inside root, creating root and rel's parent
// directories as needed, and fills it with write. The content goes to a
// temporary file in the same directory that is renamed over rel only when
// write succeeds, so a failed or cancelled block leaves no partial file
// behind.
func writeInRoot(root, rel string, write func(w io.Writer) error) error {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return fmt.Errorf("creating output directory: %w", err)
	}
	if _, err := ResolvePath(root, rel); err != nil {
		return err
	}
	dir, err := os.OpenRoot(root)
	if err != nil {
		return fmt.Errorf("opening directory: %w", err)
	}
	defer dir.Close()

	name := filepath.Clean(filepath.FromSlash(rel))
	if parent := filepath.Dir(name); parent != "." {
		if err := dir.MkdirAll(parent, 0o755); err != nil {
			return fmt.Errorf("creating parent directories: %w", err)
		}
	}
	temporary := filepath.Join(filepath.Dir(name), fmt.Sprintf(".%s.%016x.tmp", filepath.Base(name), rand.Uint64()))
	file, err := dir.OpenFile(temporary, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("creating file: %w", err)
	}

	err = writeBuffered(file, write)
	if err == nil {
		err = dir.Rename(temporary, name)
	}
	if err != nil {
		_ = dir.Remove(temporary)
		return err
	}
	return nil
}

// writeBuffered runs write through a buffer and closes file, returning the
// first error of writing, flushing or closing.
func writeBuffered(file *os.File, write func(w io.Writer) error) error {
	buffered := bufio.NewWriterSize(file, 64<<10)
	err := write(buffered)
	if err == nil {
		err = buffered.Flush()
	}
	if closeErr := file.Close(); err == nil && closeErr != nil {
		err = fmt.Errorf("closing file: %w", closeErr)
	}
	return err
}
