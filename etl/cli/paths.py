"""Check, before the first request, that every local path a command will write can be written."""

import os
import tempfile

from etl.model.config import manifest_dir as manifest_dir_of
from etl.model.errors import UsageError

MANIFEST_WRITERS = {"extract", "migrate"}


def _folder_writable(folder):
    """Create ``folder`` if needed and write a scratch file in it; return the OS error's reason, or None."""
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        return err.strerror or type(err).__name__
    return None


def check_local_paths(cmd, values, settings):
    """Refuse (exit 2, naming the path) a manifest folder or output file the command could not write."""
    dry_run = values.get("dry_run", False)
    manifest_dir = manifest_dir_of(settings.get("manifest_dir"))
    if cmd.name in MANIFEST_WRITERS and manifest_dir and not dry_run:
        why = _folder_writable(manifest_dir)
        if why:
            raise UsageError(f"--manifest-dir {manifest_dir!r} cannot be written ({why}); nothing was done; give "
                             "a writable folder, or --manifest-dir '' to keep no local copies")
    output = values.get("output")
    if cmd.name == "diff" and not output and (values.get("all") or values.get("format", "table") != "table"):
        output = os.path.join(manifest_dir or "manifests", "reports", "")  # where the report goes by default
    if output and output != "-":
        folder = output if (cmd.name == "diff" and values.get("all")) else os.path.dirname(os.path.abspath(output))
        why = _folder_writable(folder)
        if why:
            raise UsageError(f"--output {output!r} cannot be written ({why}); nothing was done; give a writable path")
