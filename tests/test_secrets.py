"""Secrets never reach an artifact: logs, status records, events, markers, manifests, reports, errors."""

import os
import subprocess
import sys
from urllib.parse import quote, quote_plus

import pytest

from etl.cli.main import main
from tests.batch import build_batch
from tests.helpers import objects

AWS_SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYSECRETKEY42"
MONGO_PASSWORD = "Mongo-Pa55word-7f3c9e"
URI = f"mongodb://etl_user:{MONGO_PASSWORD}@127.0.0.1:1/edxapp?authSource=admin"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# Passwords with every character a URI or a shell treats specially, typed raw or percent-encoded.
HOSTILE = ["p/ss:w@rd%41", "a@b:c/d@e", "%2F%40%3A-enc", "ünï€ode-Pässwort", "sp ace+plus", "q\"uo'te`$x",
           "semi;colon?&=#frag", "back\\slash//"]


def forms(password):
    return {password, quote(password, safe=""), quote_plus(password)}


@pytest.mark.parametrize("password", HOSTILE)
@pytest.mark.parametrize("encoded", [True, False])
def test_a_hostile_password_never_reaches_an_error_or_a_traceback(cfg, capsys, password, encoded):
    userinfo = f"etl_user:{quote_plus(password) if encoded else password}"
    uri = f"mongodb://{userinfo}@127.0.0.1:1/edxapp?serverSelectionTimeoutMS=200"
    for debug in ([], ["--debug"]):
        with pytest.raises(SystemExit) as exit_:
            main(["extract", "course-v1:Any+Course+1", "--bucket", cfg.bucket, "--s3-endpoint-url",
                  cfg.s3_endpoint_url, "--mongo-uri", uri, *debug])
        out, err = capsys.readouterr()
        assert exit_.value.code == 2 and "etl_user:***@" in err
        for secret in forms(password):
            assert secret not in out + err, (secret, err)


@pytest.mark.parametrize("password", [MONGO_PASSWORD, HOSTILE[0], HOSTILE[3]])
def test_no_secret_in_any_artifact_of_a_full_run(cfg, contentstore, tmp_path, capsys, monkeypatch, password):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_SECRET)
    uri = f"mongodb://etl_user:{quote_plus(password)}@127.0.0.1:1/edxapp?authSource=admin"
    ids = build_batch(contentstore, 4)
    common = ["--bucket", cfg.bucket, "--s3-endpoint-url", cfg.s3_endpoint_url, "--mongo-uri", uri,
              "--manifest-dir", str(tmp_path / "manifests")]
    commands = [["migrate", *ids], ["status"], ["report"], ["verify", ids[1]], ["diff", ids[1]],
                ["diff", "--all"], ["rollback", ids[2], "--force"], ["extract", ids[2]],
                ["diff", ids[2], "--format", "json"], ["status", "--format", "json"],
                ["migrate", "--all", "--dry-run", "--log-format", "json"], ["history", ids[2]]]
    for command in commands:
        for fmt in ([], ["--log-format", "json"]):
            try:
                main(command + common + fmt, contentstore=contentstore)
            except SystemExit:
                pass
    out, err = capsys.readouterr()
    artifacts = {"stdout": out.encode(), "stderr": err.encode(), "repr(cfg)": repr(cfg).encode()}
    artifacts.update(objects(cfg))  # records with their histories, markers, manifests, transcripts
    for folder, _, files in os.walk(tmp_path / "manifests"):
        for name in files:
            with open(os.path.join(folder, name), "rb") as fh:
                artifacts[os.path.join(folder, name)] = fh.read()
    assert len(artifacts) > 30 and any(k.endswith("index.html") for k in artifacts)
    assert sum(f"{cfg.state_prefix}/courses/" in k for k in artifacts) == 4
    for where, data in artifacts.items():
        for secret in (AWS_SECRET, *forms(password)):
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
    assert plain.returncode == 2 and plain.stderr.count("\n") == 1 and MONGO_PASSWORD not in plain.stderr
    assert "cannot read the contentstore" in plain.stderr and "etl_user:***@127.0.0.1:1" in plain.stderr
