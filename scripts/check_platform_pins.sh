#!/usr/bin/env bash
# Install the tool next to the versions openedx-platform pins, prove that none of them changes, and run the
# Phase II tests there (edx-val 3.2.0 on Django 5.2, pymongo 4.4, boto3 1.42, numpy 1.26).
# Usage: scripts/check_platform_pins.sh [PINS]   (default: ../shared/openedx/platform-pins.txt beside the checkout)
set -euo pipefail
cd "$(dirname "$0")/.."
pins=${1:-../shared/openedx/platform-pins.txt}
if [ ! -f "$pins" ]; then
  echo "no platform pins at $pins: the Open edX install check is skipped" >&2
  exit 0
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python -m venv "$work/venv"
# shellcheck disable=SC1091
. "$work/venv/bin/activate"
pip install -q -r "$pins"
pinned() { grep -E '^[A-Za-z0-9_.-]+(\[[^]]*\])?==' "$pins" | sed 's/\[[^]]*\]//' | sort -f; }
installed() { pip freeze | sed 's/\[[^]]*\]//' | sort -f; }
pinned > "$work/wanted"
# As Tutor installs OPENEDX_EXTRA_PIP_REQUIREMENTS: a plain pip install, no constraints.
pip install -q '.[openedx]'
installed > "$work/after"
missing=$(comm -23 <(tr 'A-Z' 'a-z' < "$work/wanted" | sort) <(tr 'A-Z' 'a-z' < "$work/after" | sort))
if [ -n "$missing" ]; then
  echo "installing openedx-transcript-etl[openedx] changed the platform's pins; wanted, and no longer installed:" >&2
  echo "$missing" >&2
  exit 1
fi
echo "platform pins unchanged by pip install '.[openedx]': $(wc -l < "$work/wanted") packages"
# The tests' own tools, held to the same pins (extras stripped: pip takes no extras in a constraints file).
sed 's/\[[^]]*\]//' "$pins" > "$work/constraints"
pip install -q -c "$work/constraints" '.[test]'
python -m etl --version
python -m etl demo > "$work/demo.txt"
tail -n 2 "$work/demo.txt"
python - <<'PY'
import django, edxval, numpy, pandas, pyarrow, boto3, pymongo
print(f"edx-val {edxval.__version__ if hasattr(edxval, '__version__') else '?'}, Django {django.get_version()}, "
      f"numpy {numpy.__version__}, pandas {pandas.__version__}, pyarrow {pyarrow.__version__}, "
      f"boto3 {boto3.__version__}, pymongo {pymongo.version}")
PY
python -m pytest -q -p no:cacheprovider tests/test_openedx.py tests/test_handoff.py
