package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// cloneRepo clones the repository that holds dir into dst. With
// uncommitted set, the working tree's changes to tracked files and its
// untracked files that git does not ignore are carried over, so that the
// clone is what the next commit would hold. It returns what it carried
// over, for the log.
func cloneRepo(ctx context.Context, dir, dst string, uncommitted bool) (string, error) {
	env := newcomerEnv()
	top, err := output(ctx, dir, env, "git", "rev-parse", "--show-toplevel")
	if err != nil {
		return "", fmt.Errorf("not in a git repository: %w", err)
	}
	top = strings.TrimSpace(top)
	if _, err := output(ctx, "", env, "git", "clone", "--quiet", "--no-hardlinks", top, dst); err != nil {
		return "", err
	}
	head, err := output(ctx, dst, env, "git", "log", "-1", "--format=%h %s")
	if err != nil {
		return "", err
	}
	desc := "HEAD " + strings.TrimSpace(head)
	if !uncommitted {
		return desc, nil
	}

	diff := exec.CommandContext(ctx, "git", "diff", "--binary", "HEAD")
	diff.Dir, diff.Env = top, env
	patch, err := diff.Output()
	if err != nil {
		return "", fmt.Errorf("git diff: %w", err)
	}
	changed := 0
	if len(patch) > 0 {
		apply := exec.CommandContext(ctx, "git", "apply", "--binary", "--whitespace=nowarn", "-")
		apply.Dir, apply.Env = dst, env
		apply.Stdin = strings.NewReader(string(patch))
		if out, err := apply.CombinedOutput(); err != nil {
			return "", fmt.Errorf("carrying over uncommitted changes: git apply: %w\n%s", err, out)
		}
		changed = strings.Count(string(patch), "\ndiff --git ") + 1
	}

	list, err := output(ctx, top, env, "git", "ls-files", "--others", "--exclude-standard", "-z")
	if err != nil {
		return "", err
	}
	untracked := 0
	for _, name := range strings.Split(list, "\x00") {
		if name == "" {
			continue
		}
		if err := copyFile(filepath.Join(top, name), filepath.Join(dst, name)); err != nil {
			return "", fmt.Errorf("carrying over %s: %w", name, err)
		}
		untracked++
	}
	if changed > 0 || untracked > 0 {
		desc += fmt.Sprintf(", plus the working tree's uncommitted changes: %d changed and %d untracked files", changed, untracked)
	}
	return desc, nil
}

// copyFile copies a regular file, keeping its permission bits.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	info, err := in.Stat()
	if err != nil {
		return err
	}
	if !info.Mode().IsRegular() {
		return nil // a symlink or the like: a newcomer's clone has it from git
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, info.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
