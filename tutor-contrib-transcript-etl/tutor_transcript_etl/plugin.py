"""transcript-etl for Tutor: the tool in the openedx image, edx-val's S3 storage, and every step as a job.

``tutor plugins enable transcript-etl`` then ``tutor config save --set
TRANSCRIPT_ETL_BUCKET=…`` and ``tutor images build openedx``; then each step is
a job in the container it belongs in, its settings read from a rendered file
(``/openedx/config/transcript-etl.env``), never from its command line:

- ``tutor local do transcript-etl ARGS…``: ``python -m etl ARGS…`` in Studio's job container;
- ``tutor local do transcript-etl-register ARGS…``: ``./manage.py cms transcript_etl_register ARGS…`` there too;
- ``tutor local do transcript-etl-check ARGS…``: ``./manage.py lms transcript_etl_check ARGS…`` in the LMS's
  job container, with the LMS's own settings and identity.

The same jobs run on Kubernetes with ``tutor k8s do``.
"""

import os
import shlex
from urllib.parse import quote_plus

import click
import importlib_resources
from tutor import hooks

from .__about__ import __version__

ENV_FILE = "/openedx/config/transcript-etl.env"  # apps/openedx/config, mounted in lms-job and cms-job
MOUNTED = "openedx-transcript-etl"  # `tutor mounts add …/openedx-transcript-etl`: Tutor installs it itself

hooks.Filters.CONFIG_DEFAULTS.add_items([(f"TRANSCRIPT_ETL_{name}", value) for name, value in {
    "VERSION": __version__,  # the tool's version this image installs
    "PIP_REQUIREMENT": "openedx-transcript-etl[openedx]=={{ TRANSCRIPT_ETL_VERSION }}",
    "BUCKET": "",
    "STAGING_PREFIX": "staging",
    "LIVE_PREFIX": "video-transcripts",
    "STATE_PREFIX": "_etl",
    "REGION": "",
    "ENDPOINT_URL": "",
    # The tool's own identity: never the platform's (OPENEDX_AWS_*), which edx-val's storage and the LMS keep.
    "AWS_ACCESS_KEY_ID": "",
    "AWS_SECRET_ACCESS_KEY": "",
    # '' derives the contentstore from Tutor's own MONGODB_* settings.
    "MONGODB_URI": "",
    "MONGODB_DATABASE": "",
    # edx-val's transcripts storage, for the LMS and Studio alike: '' keeps Tutor's filesystem default.
    "VAL_BUCKET": "",
    "VAL_LOCATION": "",
    "VAL_REGION": "{{ TRANSCRIPT_ETL_REGION }}",
    "VAL_ENDPOINT_URL": "",
}.items()])

hooks.Filters.ENV_TEMPLATE_ROOTS.add_item(str(importlib_resources.files("tutor_transcript_etl") / "templates"))

hooks.Filters.ENV_PATCHES.add_items([
    ("openedx-dockerfile-post-python-requirements", """
{%- if "MOUNTED" not in iter_mounted_directories(MOUNTS, "openedx")|list %}
# transcript-etl: the tool and its Open edX plugin app, installed as every extra requirement is, no pin moved
RUN --mount=type=cache,target=/openedx/.cache/pip,sharing=shared \\
    $PIP_COMMAND install {{ TRANSCRIPT_ETL_PIP_REQUIREMENT|transcript_etl_quote }}
{%- endif %}
""".replace("MOUNTED", MOUNTED)),
    ("openedx-common-settings", """
{%- if TRANSCRIPT_ETL_VAL_BUCKET %}
# transcript-etl: edx-val keeps its transcripts in S3, one storage for the LMS and Studio alike (Studio writes the
# copies, the LMS reads them), with the platform's own credentials.
STORAGES["video_transcripts"] = {
    "BACKEND": "storages.backends.s3.S3Storage",
    "OPTIONS": {
        "bucket_name": "{{ TRANSCRIPT_ETL_VAL_BUCKET }}",
        "location": "{{ TRANSCRIPT_ETL_VAL_LOCATION }}",
        "querystring_auth": True,
        "file_overwrite": False,
        {%- if TRANSCRIPT_ETL_VAL_REGION %}
        "region_name": "{{ TRANSCRIPT_ETL_VAL_REGION }}",
        {%- endif %}
        {%- if TRANSCRIPT_ETL_VAL_ENDPOINT_URL %}
        "endpoint_url": "{{ TRANSCRIPT_ETL_VAL_ENDPOINT_URL }}",
        {%- endif %}
    },
}
{%- endif %}
"""),
])


def mongodb_uri(host, port, username, password, auth_source, use_ssl, replica_set, mechanism):
    """Return the MongoDB URI of Tutor's MONGODB_* settings, the user name and password percent-encoded."""
    auth = f"{quote_plus(str(username))}:{quote_plus(str(password))}@" if username else ""
    options = [("authSource", auth_source)] if auth_source else []
    options += [("tls", "true")] if str(use_ssl).lower() == "true" else []
    options += [("replicaSet", replica_set)] if replica_set else []
    options += [("authMechanism", mechanism)] if mechanism else []
    query = "&".join(f"{k}={quote_plus(str(v))}" for k, v in options)
    return f"mongodb://{auth}{host}:{port}/" + (f"?{query}" if query else "")


hooks.Filters.ENV_TEMPLATE_FILTERS.add_item(("transcript_etl_quote", lambda value: shlex.quote(str(value))))
hooks.Filters.ENV_TEMPLATE_VARIABLES.add_item(("transcript_etl_mongodb_uri", mongodb_uri))


@hooks.Actions.PLUGIN_UNLOADED.add()
def _forget_settings(plugin, root, _config):
    """Delete the rendered settings (credentials among them) when the plugin is disabled."""
    if plugin == "transcript-etl":
        path = os.path.join(root, "env", "apps", "openedx", "config", "transcript-etl.env")
        if os.path.exists(path):
            os.remove(path)


def read_courses(path):
    """Return the course ids in a file of the host: one per line, blank lines and '#' comments ignored."""
    with open(path, encoding="utf-8") as fh:
        return [line.split("#", 1)[0].strip() for line in fh if line.split("#", 1)[0].strip()]


def with_courses(args):
    """Return ``args`` with each ``--courses FILE`` of the host replaced by the ids it lists.

    The job runs in a container that does not see the operator's files; every
    command that takes ``--courses FILE`` takes the same ids as arguments.
    """
    out, args = [], list(args)
    while args:
        arg = args.pop(0)
        path = args.pop(0) if arg == "--courses" and args else arg[len("--courses="):] if arg.startswith(
            "--courses=") else None
        if path is None:
            out.append(arg)
            continue
        try:
            out += read_courses(path)
        except OSError as err:
            raise click.UsageError(f"cannot read course list {path}: {err.strerror}") from None
    return out


def script(command, args):
    """Return the job's shell script: the rendered settings, then the command and its arguments, quoted."""
    line = " ".join([command] + [shlex.quote(a) for a in with_courses(args)])
    return f"set -a\n. {ENV_FILE}\nset +a\n{{% raw %}}{line}{{% endraw %}}"


def job(name, service, command, what):
    @click.command(name=name, help=f"{what}: runs `{command} ARGS…` in the {service} job container.",
                   context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def run(args):
        yield service, script(command, args)
    return run


hooks.Filters.CLI_DO_COMMANDS.add_items([
    job("transcript-etl", "cms", "python -m etl",
        "Run the transcript migration tool (migrate, handoff, report, diff, rollback, vacuum, status…)"),
    job("transcript-etl-register", "cms", "./manage.py cms transcript_etl_register",
        "Turn Phase II on (or off, --undo) for courses in edx-val, as Studio uploads"),
    job("transcript-etl-check", "lms", "./manage.py lms transcript_etl_check",
        "Check, as the LMS reads them, that edx-val serves every registered transcript"),
])
