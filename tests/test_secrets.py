"""Secrets never reach an artifact: logs, status records, events, markers, manifests, reports, errors."""

import os
import subprocess
import sys

from etl.cli import main
from tests.batch import build_batch
from tests.helpers import objects

AWS_SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYSECRETKEY42"
MONGO_PASSWORD = "Mongo-Pa55word-7f3c9e"
URI = f"mongodb://etl_user:{MONGO_PASSWORD}@127.0.0.1:1/edxapp?authSource=admin"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_no_secret_in_any_artifact_of_a_full_run(cfg, contentstore, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_SECRET)
    ids = build_batch(contentstore, 4)
    common = ["--bucket", cfg.bucket, "--s3-endpoint-url", cfg.s3_endpoint_url, "--mongo-uri", URI,
              "--manifest-dir", str(tmp_path / "manifests")]
    commands = [["migrate", *ids], ["status"], ["report"], ["verify", ids[1]], ["diff", ids[1]],
                ["diff", "--all"], ["rollback", ids[2], "--force"], ["extract", ids[2]],
                ["diff", ids[2], "--format", "json"], ["status", "--format", "json"],
                ["migrate", "--all", "--dry-run", "--log-format", "json"]]
    for command in commands:
        for fmt in ([], ["--log-format", "json"]):
            try:
                main(command + common + fmt, contentstore=contentstore)
            except SystemExit:
                pass
    out, err = capsys.readouterr()
    artifacts = {"stdout": out.encode(), "stderr": err.encode(), "repr(cfg)": repr(cfg).encode()}
    artifacts.update(objects(cfg))  # records, events, markers, manifests, transcripts
    for folder, _, files in os.walk(tmp_path / "manifests"):
        for name in files:
            with open(os.path.join(folder, name), "rb") as fh:
                artifacts[os.path.join(folder, name)] = fh.read()
    assert len(artifacts) > 50 and any(k.endswith("index.html") for k in artifacts)
    for where, data in artifacts.items():
        for secret in (AWS_SECRET, MONGO_PASSWORD):
            assert secret.encode() not in data, f"{secret} leaked into {where}"


def test_no_secret_in_the_error_when_mongodb_is_unreachable(cfg):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETL_")}
    env.update(AWS_SECRET_ACCESS_KEY=AWS_SECRET, ETL_MONGO_URI=URI.replace("?", "?serverSelectionTimeoutMS=300&"))
    run = subprocess.run([sys.executable, "-m", "etl", "extract", "course-v1:Any+Course+1", "--bucket", cfg.bucket,
                          "--s3-endpoint-url", cfg.s3_endpoint_url, "--debug"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode != 0 and "127.0.0.1:1" in run.stderr + run.stdout
    for secret in (AWS_SECRET, MONGO_PASSWORD):
        assert secret not in run.stdout + run.stderr
    plain = subprocess.run([sys.executable, "-m", "etl", "extract", "course-v1:Any+Course+1", "--bucket",
                            cfg.bucket, "--s3-endpoint-url", cfg.s3_endpoint_url], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=120)
    assert plain.returncode == 4 and plain.stderr.count("\n") == 1 and MONGO_PASSWORD not in plain.stderr
