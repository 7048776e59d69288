"""Delete what the tool wrote, and nothing else: the two delete helpers every verb shares.

Neither ever deletes a course's marker key (``_MIGRATED.json``): a commit there
is removed only by ``rollback --force``, and a fence only by the run that owns it
(see ``etl.marker``).
"""

from . import s3
from .layout import Layout


def remove_tool_objects(cfg, course, prefix, dry_run=False, listed=None):
    """Delete every object under ``prefix`` that this tool wrote for ``course``, except its marker key.

    Whose objects: those whose metadata names this tool and this course, from
    any run. Ownership comes from each object's metadata (head), and each delete
    is conditional on the ETag seen, so an object replaced meanwhile is never lost.
    Return (number deleted, keys kept because someone else wrote them); with
    ``dry_run``, (keys that would be deleted, keys that would be kept), deleting nothing.
    ``listed`` is the prefix's listing when the caller has just made it.
    """
    marker = Layout(cfg, course).marker
    listed = [o for o in (s3.list_objects(cfg, prefix) if listed is None else listed) if o["Key"] != marker]

    def remove(obj):
        head = s3.head(cfg, obj["Key"])
        if head is None:
            return None, None
        if not s3.written_by_tool(head, course):
            return None, obj["Key"]
        if dry_run:
            return obj["Key"], None
        try:
            s3.delete_if_match(cfg, obj["Key"], s3.etag(head["ETag"]))
        except s3.PreconditionFailed:
            return None, obj["Key"]  # replaced since the head: not ours to delete any more
        return obj["Key"], None

    results = s3.run_all(cfg, remove, listed)
    removed, kept = [k for k, _ in results if k], [k for _, k in results if k]
    return (removed if dry_run else len(removed)), kept


def discard(cfg, keys):
    """Delete keys that this process's own run wrote, registered one by one as S3 accepted them.

    Whose objects: only keys the caller put or copied itself in this run, in its
    own staging run or at live keys it checked were free or the tool's.
    """
    s3.delete_many(cfg, keys)
