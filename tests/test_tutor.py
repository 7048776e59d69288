"""The Tutor plugin, with Tutor's own package: its settings, rendered files and jobs, up to the Docker call.

Run by scripts/check_tutor_plugin.sh in a virtualenv of its own (tutor 22 and
the plugin, tutor-contrib-transcript-etl, installed beside it); skipped where
Tutor is not installed. A ``docker`` on PATH records its arguments instead of
running anything: Tutor's own code path, all of it, up to ``docker compose ...
run --rm -T cms-job sh -e -c SCRIPT``.
"""

import json
import os
import shutil
import subprocess
import sys

import pytest

pytest.importorskip("tutor")
pytest.importorskip("tutor_transcript_etl")

SECRET = "tool-s3cr3t/with'quote$and@at"
MONGO_PASSWORD = "p@ss/word:1"
FAKE_DOCKER = """#!/usr/bin/env python3
import json, os, sys
with open(os.environ["FAKE_DOCKER_LOG"], "a") as fh:
    fh.write(json.dumps(sys.argv[1:]) + "\\n")
if "ls" in sys.argv and "json" in sys.argv:
    print("[]")
"""


@pytest.fixture
def tutor(tmp_path):
    """Return a function running the real ``tutor`` CLI on a root of its own, with the recording ``docker``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(FAKE_DOCKER)
    (bin_dir / "docker").chmod(0o755)
    log = tmp_path / "docker.log"
    env = dict(os.environ, TUTOR_ROOT=str(tmp_path / "root"), FAKE_DOCKER_LOG=str(log),
               PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    command = shutil.which("tutor", path=os.path.dirname(sys.executable)) or "tutor"

    def run(*args):
        done = subprocess.run([command, *args], env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, (args, done.stdout[-2000:], done.stderr[-2000:])
        return done.stdout + done.stderr

    run.root, run.log = tmp_path / "root", log
    run("plugins", "enable", "transcript-etl")
    run("config", "save", "--set", "TRANSCRIPT_ETL_BUCKET=my-transcripts", "--set",
        "TRANSCRIPT_ETL_AWS_ACCESS_KEY_ID=AKIATOOL", "--set", f"TRANSCRIPT_ETL_AWS_SECRET_ACCESS_KEY={SECRET}",
        "--set", "TRANSCRIPT_ETL_VAL_BUCKET=my-edxval", "--set", "TRANSCRIPT_ETL_VAL_REGION=eu-west-1")
    return run


def jobs(run):
    """Return the ``docker compose ... run`` calls recorded: (service, script)."""
    calls = [json.loads(line) for line in run.log.read_text().splitlines()] if run.log.exists() else []
    return [(call[call.index("run") + 3], call[-1]) for call in calls if "run" in call]


def env_file(run):
    """Return what the job containers' shell reads from the rendered settings: {name: value}."""
    path = run.root / "env" / "apps" / "openedx" / "config" / "transcript-etl.env"
    done = subprocess.run(["sh", "-c", f"set -a; . '{path}'; env -0"], capture_output=True, env={}, check=True)
    return dict(item.split("=", 1) for item in done.stdout.decode().split("\0") if item.startswith("ETL_"))


def test_the_plugin_is_listed_and_enabled(tutor):
    listed = tutor("plugins", "list")
    assert "transcript-etl" in listed and "enabled" in listed.split("transcript-etl", 1)[1].splitlines()[0]


def test_edx_vals_storage_is_the_same_s3_storage_in_the_lms_and_studio_from_one_setting(tutor):
    settings = {}
    for service in ("lms", "cms"):
        text = (tutor.root / "env" / "apps" / "openedx" / "settings" / service / "production.py").read_text()
        block = text.split('STORAGES["video_transcripts"] = ', 1)[1].split("\n}\n", 1)[0]
        settings[service] = block
        assert '"BACKEND": "storages.backends.s3.S3Storage"' in block and '"bucket_name": "my-edxval"' in block
        assert '"region_name": "eu-west-1"' in block and "AWSTOOL" not in block and "AKIATOOL" not in block
    assert settings["lms"] == settings["cms"]
    tutor("config", "save", "--set", "TRANSCRIPT_ETL_VAL_BUCKET=")  # unset: Tutor's filesystem default stays
    text = (tutor.root / "env" / "apps" / "openedx" / "settings" / "lms" / "production.py").read_text()
    assert 'STORAGES["video_transcripts"]' not in text


def test_the_image_installs_the_tool_with_its_openedx_extra_unless_a_checkout_is_mounted(tutor, tmp_path):
    dockerfile = (tutor.root / "env" / "build" / "openedx" / "Dockerfile").read_text()
    assert "$PIP_COMMAND install 'openedx-transcript-etl[openedx]==" in dockerfile
    checkout = tmp_path / "openedx-transcript-etl"
    checkout.mkdir()
    tutor("mounts", "add", str(checkout))
    dockerfile = (tutor.root / "env" / "build" / "openedx" / "Dockerfile").read_text()
    assert "openedx-transcript-etl[openedx]" not in dockerfile
    assert '$PIP_COMMAND install -e "/mnt/openedx-transcript-etl"' in dockerfile  # Tutor's own, the extra-less one


def test_do_lists_the_three_jobs_locally_and_on_kubernetes(tutor):
    for mode in ("local", "k8s"):
        listed = tutor(mode, "do", "--help")
        assert all(name in listed for name in ("transcript-etl ", "transcript-etl-register", "transcript-etl-check"))


def test_each_job_runs_where_it_belongs_with_the_rendered_settings_and_no_secret_on_a_command_line(tutor, tmp_path):
    pilot = tmp_path / "pilot.txt"
    pilot.write_text("# pilot\ncourse-v1:Org+One+2026\n\ncourse-v1:Org+Two+2026  # the second\n")
    tutor("local", "do", "transcript-etl", "migrate", "course-v1:Org+One+2026", "--dry-run")
    tutor("local", "do", "transcript-etl-register", "--courses", str(pilot), "--commit")
    output = tutor("local", "do", "transcript-etl-check", f"--courses={pilot}")
    ran = jobs(tutor)
    assert [service for service, _ in ran] == ["cms-job", "cms-job", "lms-job"]
    prologue = "set -a\n. /openedx/config/transcript-etl.env\nset +a\n"
    assert all(script.startswith(prologue) for _, script in ran)
    assert ran[0][1].endswith("python -m etl migrate course-v1:Org+One+2026 --dry-run")
    assert ran[1][1].endswith("./manage.py cms transcript_etl_register course-v1:Org+One+2026 "
                              "course-v1:Org+Two+2026 --commit")  # the file's ids reach the container
    assert ran[2][1].endswith("./manage.py lms transcript_etl_check course-v1:Org+One+2026 course-v1:Org+Two+2026")
    recorded = tutor.log.read_text()
    assert SECRET not in recorded and json.dumps(SECRET)[1:-1] not in recorded and SECRET not in output
    assert env_file(tutor)["ETL_AWS_SECRET_ACCESS_KEY"] == SECRET  # where it is: the rendered file only


def test_the_jobs_settings_name_the_bucket_and_mongodb_as_tutor_configures_it(tutor):
    settings = env_file(tutor)
    assert settings["ETL_BUCKET"] == "my-transcripts" and settings["ETL_AWS_ACCESS_KEY_ID"] == "AKIATOOL"
    assert settings["ETL_MONGO_URI"] == "mongodb://mongodb:27017/?authSource=admin"
    assert settings["ETL_MONGO_DB"] == "openedx" and settings["ETL_MANIFEST_DIR"] == ""
    assert "AWS_ACCESS_KEY_ID" not in settings  # never the platform's identity
    tutor("config", "save", "--set", "MONGODB_USERNAME=openedx", "--set", f"MONGODB_PASSWORD={MONGO_PASSWORD}",
          "--set", "MONGODB_HOST=mongo.internal", "--set", "MONGODB_DATABASE=edxapp")
    settings = env_file(tutor)
    assert settings["ETL_MONGO_URI"] == "mongodb://openedx:p%40ss%2Fword%3A1@mongo.internal:27017/?authSource=admin"
    assert settings["ETL_MONGO_DB"] == "edxapp"


def test_disabling_the_plugin_removes_its_rendered_settings(tutor):
    path = tutor.root / "env" / "apps" / "openedx" / "config" / "transcript-etl.env"
    assert path.exists()
    tutor("plugins", "disable", "transcript-etl")
    assert not path.exists()
