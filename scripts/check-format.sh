#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# Checks that the C files (.c, .h) a change touches follow .clang-format:
# those changed between BASE and HEAD, plus uncommitted and untracked ones;
# and that every source file git tracks names its licence (an SPDX line in
# its first three lines).
# Usage: scripts/check-format.sh [BASE]   (CLANG_FORMAT: the program to run)
# Fix with: clang-format -i FILE...
#
# BASE, when not given:
# - on a branch, where it left origin/main (git merge-base), so that a
#   branch is checked on what it changes;
# - on main itself (HEAD is origin/main, as in CI) or without origin/main,
#   the commit that introduced .clang-format. Every file touched since
#   formatting began is then checked, cumulatively: a file once touched
#   stays formatted, and files nobody has touched are left as they were
#   rather than reformatted tree-wide in one commit that would bury their
#   history. The commit is looked up by its content (the last one that
#   added .clang-format), not written here as a hash, so that it stays
#   right when the branch that introduced it is rebased or squashed.
# - of the two, the later when formatting began after the branch left
#   main, so that no change made before there was a style is checked.
set -eu
cd "$(dirname "$0")/.."
clang_format=${CLANG_FORMAT:-clang-format}
# Generated files: formatted by their generator, not by hand.
generated='runtime/html-entities.h'

if [ $# -gt 0 ]; then
  base=$1
else
  introduced=$(git log -1 --diff-filter=A --format=%H -- .clang-format)
  base=${introduced:-HEAD}
  if fork=$(git merge-base HEAD origin/main 2>/dev/null) &&
      [ "$fork" != "$(git rev-parse HEAD)" ]; then
    if [ -z "$introduced" ] || git merge-base --is-ancestor "$introduced" "$fork"; then
      base=$fork
    fi
  fi
fi

unlicensed=$(git ls-files '*.c' '*.h' '*.comp' '*.glsl' '*.sh' '*.py' '*.js' \
    '*meson.build' meson_options.txt .ci/run | while read -r f; do
  head -n 3 "$f" | grep -q 'SPDX-License-Identifier:' || echo "$f"
done)
if [ -n "$unlicensed" ]; then
  echo "check-format: no SPDX-License-Identifier line in:" $unlicensed
  exit 1
fi

files=$({
  git diff --name-only --diff-filter=d "$base" HEAD
  git diff --name-only --diff-filter=d HEAD
  git ls-files --others --exclude-standard
} | grep -E '\.[ch]$' | sort -u | grep -vxF "$generated" || true)

echo "check-format: $($clang_format --version | head -n 1)"
echo "check-format: C files changed since $(git rev-parse --short "$base")"
if [ -z "$files" ]; then
  echo "check-format: none"
  exit 0
fi
bad=""
for f in $files; do
  if $clang_format --dry-run -Werror --style=file "$f" 2>/dev/null; then
    echo "ok       $f"
  else
    echo "NOT OK   $f"
    bad="$bad $f"
  fi
done
if [ -n "$bad" ]; then
  echo "check-format: not formatted (clang-format -i FILE formats one):$bad"
  exit 1
fi
echo "check-format: all formatted"
