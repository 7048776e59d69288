#!/usr/bin/env bash
# Install the tool next to the versions openedx-platform pins, each way an operator's build installs it, prove
# that none of them moves a pin, and run the Phase II tests there (edx-val 3.2.0 on Django 5.2, pymongo 4.4,
# boto3 1.42, numpy 1.26):
#   uv pip install '.[openedx]'   as Tutor 21 and later install OPENEDX_EXTRA_PIP_REQUIREMENTS ($PIP_COMMAND)
#   pip install '.[openedx]'      as older images and hand-made ones do
#   pip install -e .              as `tutor mounts add …/openedx-transcript-etl` installs a checkout: no extra
# Usage: scripts/check_platform_pins.sh [PINS]   (default: ../shared/openedx/platform-pins.txt beside the checkout)
set -euo pipefail
cd "$(dirname "$0")/.."
pins=${1:-../shared/openedx/platform-pins.txt}
if [ ! -f "$pins" ]; then
  echo "no platform pins at $pins: the Open edX install check is skipped" >&2
  exit 0
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
command -v uv >/dev/null 2>&1 || python -m pip install -q 'uv>=0.4,<1'
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pinned() { grep -E '^[A-Za-z0-9_.-]+(\[[^]]*\])?==' "$pins" | sed 's/\[[^]]*\]//' | tr 'A-Z_' 'a-z-' | sort; }
pinned > "$work/wanted"

# check NAME FREEZE-FILE: every pin is still installed at its version after the install NAME.
check() {
  sed 's/\[[^]]*\]//' "$2" | tr 'A-Z_' 'a-z-' | sort > "$work/after"
  missing=$(comm -23 "$work/wanted" "$work/after")
  if [ -n "$missing" ]; then
    echo "$1 changed the platform's pins; wanted, and no longer installed:" >&2
    echo "$missing" >&2
    exit 1
  fi
  echo "platform pins unchanged by $1: $(wc -l < "$work/wanted") packages"
}

# base DIR: a virtualenv that already holds the platform's pins, made as Tutor's openedx image makes it: Python's
# own venv (whose setuptools still has the pkg_resources that fs, edx-val's storage, imports), filled by uv pip.
# The install under test is the step after it.
base() {
  python -m venv "$1"
  uv pip install -q --python "$1/bin/python" -r "$pins"
}

# Tutor 21+: uv pip, into an environment that already holds the platform's requirements.
base "$work/uv"
uv pip install -q --python "$work/uv/bin/python" '.[openedx]'
uv pip freeze --python "$work/uv/bin/python" > "$work/uv.txt"
check "uv pip install '.[openedx]'" "$work/uv.txt"

# tutor mounts: the checkout installed editable, without the extra.
base "$work/bare"
"$work/bare/bin/pip" install -q -e .
"$work/bare/bin/pip" freeze --exclude-editable > "$work/bare.txt"
check "pip install -e ." "$work/bare.txt"

# pip, as OPENEDX_EXTRA_PIP_REQUIREMENTS without uv; then the demo and the Phase II tests in that environment.
base "$work/venv"
# shellcheck disable=SC1091
. "$work/venv/bin/activate"
pip install -q '.[openedx]'
pip freeze > "$work/pip.txt"
check "pip install '.[openedx]'" "$work/pip.txt"
# The tests' own tools, held to the same pins (extras stripped: pip takes no extras in a constraints file).
sed 's/\[[^]]*\]//' "$pins" > "$work/constraints"
uv pip install -q --python "$work/venv/bin/python" -c "$work/constraints" '.[test]'
python -m etl --version
python -m etl demo > "$work/demo.txt"
tail -n 2 "$work/demo.txt"
python - <<'PY'
import django, edxval, numpy, pandas, pyarrow, boto3, pymongo
print(f"edx-val {edxval.__version__ if hasattr(edxval, '__version__') else '?'}, Django {django.get_version()}, "
      f"numpy {numpy.__version__}, pandas {pandas.__version__}, pyarrow {pyarrow.__version__}, "
      f"boto3 {boto3.__version__}, pymongo {pymongo.version}")
PY
python -m pytest -q -p no:cacheprovider tests/test_openedx.py tests/test_handoff.py tests/test_phase2_site.py \
  tests/test_mint.py tests/test_lms.py
