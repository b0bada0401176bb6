#!/usr/bin/env bash
# Prints the path of a Python 3.10 interpreter: $PYTHON if set, else pyenv's 3.10, else a
# python3.10 on PATH that really runs (pyenv's shim exits 127 while the global version is 3.11).
set -u
is_py310() { "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' >/dev/null 2>&1; }

if [ -n "${PYTHON:-}" ]; then
  if is_py310 "$PYTHON"; then echo "$PYTHON"; exit 0; fi
  echo "error: PYTHON=$PYTHON is not a working Python 3.10 interpreter." >&2
  exit 1
fi
if command -v pyenv >/dev/null 2>&1; then
  for candidate in $(ls -d "$(pyenv root)"/versions/3.10.*/bin/python3.10 2>/dev/null | sort -V -r); do
    if is_py310 "$candidate"; then echo "$candidate"; exit 0; fi
  done
fi
for candidate in python3.10 python3; do
  path=$(command -v "$candidate" 2>/dev/null) || continue
  if is_py310 "$path"; then echo "$path"; exit 0; fi
done
cat >&2 <<'MSG'
error: shopbusy needs Python 3.10 (TFX 1.16 supports 3.9-3.10 only) and none was found.
  Install one, e.g. `pyenv install 3.10.13`, or `apt-get install python3.10 python3.10-venv`,
  or point to one with `make PYTHON=/path/to/python3.10 ...`.
MSG
exit 1
