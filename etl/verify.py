"""Verify a promoted course: the check that gates turning Phase II on for it."""

import hashlib
from dataclasses import asdict, dataclass, field

from etl.model import manifest
from etl.model.errors import NotVerified, first_few
from etl.model.layout import Layout, parse_course_id
from etl.protocol import marker as markers
from etl.protocol.known import refuse_unknown
from etl.source.changes import changes_since, transcripts_now
from etl.store import pool, probe, s3


def _not_committed(layout, seen):
    """Say what is at the commit key of a course that is not committed: nothing, or whose fence since when."""
    if seen.foreign:
        return f"not committed: {seen.foreign} is an object the tool did not write; move it away, then migrate"
    doc = seen.doc if seen.doc is not None else (seen.legacy.doc if seen.legacy is not None else None)
    if doc is None:
        return f"not committed: nothing at {layout.marker}; the course is not promoted"
    if doc.get("status") == markers.RELEASED:
        return (f"not committed: run {doc.get('run_id')} (epoch {doc.get('epoch', 0)}) ended without a commit "
                f"({doc.get('reason')}) at {doc.get('released_at')}; the course is not promoted")
    return (f"not committed: run {doc.get('run_id')} (epoch {doc.get('epoch', 0)}) fenced the course at "
            f"{doc.get('fenced_at')}; it is staged or a runner is at work on it, awaiting promote")


@dataclass
class VerifyResult:
    """Counts from the contentstore, the live prefix and the marker, and every disagreement."""

    course_id: str
    ok: bool = False
    contentstore_count: int = None
    live_count: int = None
    marker_count: int = None
    manifest_rows: int = None
    run_id: str = None
    epoch: int = None  # the commit's, when committed
    problems: list = field(default_factory=list)

    def __getitem__(self, key):
        return getattr(self, key)

    def to_dict(self):
        return asdict(self)

    def __str__(self):
        counts = ", ".join(f"{name} {value}" for name, value in (
            ("contentstore", self.contentstore_count), ("live", self.live_count), ("marker", self.marker_count))
            if value is not None)
        head = f"{'ok' if self.ok else 'NOT READY'} {self.course_id}: {counts}"
        return head + "".join(f"\n  - {p}" for p in self.problems)

    @property
    def exit_code(self):
        return 0 if self.ok else NotVerified.exit_code

    @property
    def failure(self):
        return None if self.ok else f"course {self.course_id} is not ready for Phase II: {self.problems[0]}"


def verify(cfg, course_id):
    """Check that a course's live transcripts match its marker, manifest and the contentstore now.

    Compare the contentstore's transcript count with the live objects and the
    marker, every live object's checksum with the manifest, and every
    contentstore transcript with what was migrated. ``ok`` is True only when all agree.

    Args:
        course_id: course id, course-v1:ORG+COURSE+RUN or ORG/COURSE/RUN.
    """
    course = parse_course_id(course_id)
    result = verify_course(cfg, course)
    if result.marker_count is None and not result.contentstore_count:  # nothing of it anywhere: a typo?
        refuse_unknown(cfg, [course_id])
    return result


def verify_course(cfg, course, published=None):
    """Verify a course as ``verify`` does; ``published`` is what this runner's promote just wrote.

    With ``published`` one listing of the course's live prefix replaces the
    reads of the marker and the manifest: when S3 lists them with the ETags this
    runner wrote, their content is what it wrote; otherwise they are read. The
    contentstore is always read again, so an edit that landed just before the
    commit is seen.
    """
    layout = Layout.of(cfg, course)
    result = VerifyResult(str(course))
    problems = result.problems
    if published is None:
        source, seen = pool.together(lambda: transcripts_now(cfg, course), lambda: markers.read(cfg, course))
        marker = seen.commit
        if marker is None:  # nothing is live until a commit says so
            result.contentstore_count, result.live_count = len(source), 0
            problems.append(_not_committed(layout, seen))
            return result
        prefix, manifest_key = markers.transcripts_prefix(cfg, course, marker), markers.manifest_key(cfg, course, marker)
        live, (data, _) = pool.together(lambda: {o["Key"]: o for o in s3.list_objects(cfg, prefix)},
                                      lambda: s3.get(cfg, manifest_key))
    else:
        prefix = markers.transcripts_prefix(cfg, course, published.marker)
        manifest_key = markers.manifest_key(cfg, course, published.marker)
        source, listed_live = pool.together(lambda: transcripts_now(cfg, course),
                                          lambda: {o["Key"]: o for o in s3.list_objects(cfg, layout.live_root)})
        live = {k: o for k, o in listed_live.items() if k.startswith(prefix)}
        tag = lambda key: listed_live.get(key, {}).get("ETag")  # noqa: E731
        marker = (published.marker if tag(layout.marker) == published.marker_etag
                  else markers.committed(cfg, course))
        if marker is not None and marker.get("manifest_key") != published.marker.get("manifest_key"):
            return verify_course(cfg, course)  # committed again since: check what is there now
        data = (published.manifest if tag(manifest_key) == hashlib.md5(published.manifest).hexdigest()
                else s3.get(cfg, manifest_key)[0])
    result.contentstore_count, result.live_count = len(source), len(live)
    if marker is None:
        problems.append(f"no commit at {layout.marker}: the course is not promoted")
        return result
    result.marker_count, result.run_id = marker.get("transcripts"), marker.get("run_id")
    result.epoch = int(marker.get("epoch", 0))
    if data is None:
        problems.append(f"live manifest {manifest_key} is missing")
        return result
    if manifest.checksum(data) != marker.get("manifest_sha256"):
        problems.append("live manifest checksum differs from the marker's")
    df, _ = manifest.from_bytes(data, manifest_key)
    result.manifest_rows = len(df)
    counts = {"contentstore": len(source), "live": len(live), "marker": marker.get("transcripts"),
              "manifest": len(df)}
    if len(set(counts.values())) != 1:
        problems.append("counts differ: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    expected = dict(zip(df["live_key"], zip(df["asset_name"], df["md5"], df["staged_etag"])))
    missing = [name for key, (name, _, _) in expected.items() if key not in live]
    extra = [key.rsplit("/", 1)[1] for key in live if key not in expected]
    # A copy of a multipart upload may keep the multipart ETag; either form is a match. An ETag that is
    # neither is read back: on SSE-KMS and SSE-C buckets ETags are not MD5s, and the bytes are the truth.
    # Where the store keeps SHA-256 checksums, the checksum it kept is asked first (one HEAD).
    suspect = [key for key, (name, md5, tag) in expected.items() if key in live and live[key]["ETag"] not in (md5, tag)]
    sums = dict(zip(df["live_key"], df["sha256"])) if "sha256" in df.columns else {}
    store = probe.known(cfg)

    def intact(key):
        if store is not None and store.keeps_checksums and isinstance(sums.get(key), str):
            kept = s3.sha256_kept(cfg, key)
            if kept is not None:
                return kept == sums[key]
        return s3.md5_of(cfg, key) == expected[key][1]

    wrong = [expected[key][0] for key, ok in zip(suspect, pool.run_all(cfg, intact, suspect)) if not ok]
    if missing:
        problems.append(f"missing from S3: {first_few(missing)}")
    if extra:
        problems.append(f"in S3 but not in the manifest: {first_few(extra)}")
    if wrong:
        problems.append(f"checksum differs in S3: {first_few(wrong)}")
    added, removed, changed = changes_since(df, source)
    for ids, what in ((added, "added to"), (removed, "deleted from"), (changed, "edited in")):
        if ids:
            problems.append(f"{what} the contentstore since promote: {first_few(ids)}")
    result.ok = not problems
    return result
