# Sourced by bin/run and bin/test: a virtualenv in .venv with the pinned dependencies.
# Usage: . bin/_env.sh runtime|dev
set -euo pipefail
profile="${1:-runtime}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

find_python() {
  for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
      echo "$candidate"
      return 0
    fi
  done
  echo "Python 3.11 or newer is needed (with the venv module); none was found on PATH." >&2
  return 1
}

if [ ! -x .venv/bin/python ]; then
  python="$(find_python)"
  echo "Creating .venv with $($python --version)"
  "$python" -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate

requirements="requirements.in"
[ "$profile" = "dev" ] && requirements="requirements-dev.in"
stamp=".venv/.installed-$profile"
wanted="$(cat requirements.in "$requirements" requirements.lock | sha256sum | cut -c1-16)"
dev_wanted="$(cat requirements.in requirements-dev.in requirements.lock | sha256sum | cut -c1-16)"
if [ "$profile" = "runtime" ] && [ "$(cat .venv/.installed-dev 2>/dev/null || true)" = "$dev_wanted" ]; then
  : # the dev set includes the runtime set
elif [ "$(cat "$stamp" 2>/dev/null || true)" != "$wanted" ]; then
  echo "Installing pinned dependencies ($profile)"
  python -m pip install --quiet --disable-pip-version-check --upgrade pip
  python -m pip install --quiet --disable-pip-version-check -r "$requirements" -c requirements.lock
  echo "$wanted" >"$stamp"
fi
