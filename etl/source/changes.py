"""Tell what changed in the contentstore since a run's snapshot, and refuse to publish over an edit."""

from etl.model import manifest
from etl.model.errors import SourceChanged, first_few
from etl.source import contentstore


def transcripts_now(cfg, course):
    """Return the course's transcripts in the contentstore now, by asset id."""
    return {a.asset_id: a for a in contentstore.find_transcripts(cfg, course)}


def changes_since(df, source):
    """Return the asset ids (added, removed, changed) between a manifest ``df`` and ``transcripts_now``."""
    return contentstore.changed_assets(manifest.identities(df), {k: a.identity() for k, a in source.items()})


def refuse_if_changed(cfg, course, df, run_id, source=None):
    """Refuse when any transcript was added, deleted or edited since the run's snapshot in ``df``.

    ``source`` is ``transcripts_now``'s answer, when the caller already has it.
    """
    source = transcripts_now(cfg, course) if source is None else source
    added, removed, changed = changes_since(df, source)
    if added or removed or changed:
        names = [n.rsplit("@", 1)[-1].rsplit("/", 1)[-1] for n in added + removed + changed]
        kinds = ", ".join(f"{len(x)} {w}" for x, w in ((added, "added"), (removed, "deleted"),
                                                         (changed, "edited")) if x)
        raise SourceChanged(f"course {course}: transcripts changed in the contentstore since run {run_id} "
                            f"was extracted ({kinds}: {first_few(names)}); nothing was published; "
                            f"extract the course again")
