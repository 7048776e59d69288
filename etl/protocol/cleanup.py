"""Delete what the tool wrote, and nothing else: the two delete helpers every verb shares.

Neither ever deletes a course's commit key (``_COMMIT.json``): a commit there is
removed only by ``rollback --force``, and a fence only by the run that owns it
(see ``etl.protocol.marker``). Which epochs a runner may delete is the caller's rule,
given as ``epochs``; the README's protocol section says why it is safe.
"""

from etl.model import client
from etl.model.layout import Layout
from etl.store import pool, s3


def remove_tool_objects(cfg, course, prefix, dry_run=False, listed=None, epochs=None):
    """Delete every object under ``prefix`` that this tool wrote for ``course`` in an epoch ``epochs`` allows.

    Whose objects: those whose metadata names this tool and this course, in an
    epoch for which ``epochs(epoch)`` is true (every epoch when None). Objects
    someone else wrote are kept and returned, whatever their epoch. Ownership
    comes from each object's metadata (head), and each delete is conditional on
    the ETag seen, so an object replaced meanwhile is never lost. Return (keys
    deleted, keys kept because someone else wrote them); with ``dry_run``, the
    keys that would be deleted and kept, deleting nothing.
    ``listed`` is the prefix's listing when the caller has just made it.
    """
    layout = Layout.of(cfg, course)
    listed = s3.list_objects(cfg, prefix) if listed is None else listed
    listed = [o for o in listed if o["Key"] != layout.marker]

    def remove(obj):
        head = s3.head(cfg, obj["Key"])
        if head is None:
            return None, None
        if not s3.written_by_tool(head, course):
            return None, obj["Key"]  # someone else's, in whatever epoch: kept, and named
        if epochs is not None and not epochs(layout.epoch_of(obj["Key"])):
            return None, None  # the tool's, but not an epoch this caller may delete
        if dry_run:
            return obj["Key"], None
        try:
            s3.delete_if_match(cfg, obj["Key"], s3.etag(head["ETag"]))
        except s3.PreconditionFailed:
            return None, obj["Key"]  # replaced since the head: not ours to delete any more
        return obj["Key"], None

    results = pool.run_all(cfg, remove, listed)
    removed, kept = [k for k, _ in results if k], [k for _, k in results if k]
    return removed, kept


def discard(cfg, course, epoch, keys):
    """Delete keys that this run wrote, in its own epoch, registered before each request was sent.

    Whose objects: only keys of the caller's own epoch, which no other runner
    can name; so they go whatever the lease (``s3.unguarded``), and a key whose
    write never landed is simply not there.
    """
    layout = Layout.of(cfg, course)
    keys = list(keys)
    strays = [k for k in keys if layout.epoch_of(k) != epoch]
    if strays:
        raise ValueError(f"{strays[0]} is not a key of epoch {epoch}")
    with client.unguarded():
        s3.delete_many(cfg, keys)
