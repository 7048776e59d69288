#!/usr/bin/env bash
# Install Tutor (22, from the package index) and the transcript-etl plugin (tutor-contrib-transcript-etl, in this
# repository) into a virtualenv of their own, and run the plugin's tests there with Tutor's own code, up to the
# Docker call (tests/test_tutor.py: a `docker` on PATH records what a job would run).
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python -m venv "$work/venv"
"$work/venv/bin/pip" install -q 'tutor==22.0.3' ./tutor-contrib-transcript-etl 'pytest>=8,<10' 'pytest-timeout>=2.2,<3' \
  'pytest-xdist>=3.5,<4'
"$work/venv/bin/tutor" --version
# The tool itself is not installed here: the plugin needs only Tutor, and its tests need no fixture of the suite.
"$work/venv/bin/python" -m pytest -q -p no:cacheprovider --noconftest tests/test_tutor.py
