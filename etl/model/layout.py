"""Parse course ids and build every S3 key the tool uses: the layout contract.

A key segment is ``urllib.parse.quote(text, safe=":+@")``, so the ``/`` of an
old-style course id never adds a key level and ``unquote`` gives the id back.
A segment that would read ``.`` or ``..`` has its dots encoded as ``%2E``.
"""

import hashlib
import re
import secrets
import threading
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import quote

from opaque_keys import InvalidKeyError
from opaque_keys.edx.keys import CourseKey as OpaqueCourseKey
from opaque_keys.edx.locator import CourseLocator

from etl.model.errors import InvalidId


SAFE = ":+@"
MAX_KEY_BYTES = 1024
MAX_COURSE_ID_CHARS = 255
OTHER_KINDS = {  # keys opaque-keys knows that are not a course's transcripts to migrate
    "ccx-v1:": "a CCX course, which shares its master course's assets: migrate the master course",
    "library-v1:": "a content library, which has no course assets",
    "lib:": "a content library, which has no course assets",
}


@dataclass(frozen=True)
class CourseKey:
    """A validated course id, in either of Open edX's two styles."""

    org: str
    course: str
    run: str
    deprecated: bool  # True for old-style ``ORG/COURSE/RUN`` ids

    def __str__(self):
        if self.deprecated:
            return f"{self.org}/{self.course}/{self.run}"
        return f"course-v1:{self.org}+{self.course}+{self.run}"

    @property
    def segment(self):
        """Return the course's S3 key segment."""
        return quote_segment(str(self))

    def locator(self):
        """Return the course's opaque-keys CourseLocator."""
        return CourseLocator(self.org, self.course, self.run, deprecated=self.deprecated)


def parse_course_id(course_id):
    """Parse and validate a course id with opaque-keys, as Open edX does; raise InvalidId naming what is wrong.

    Only a plain course is accepted; its branch and version, if given, are
    dropped. CCX and library keys are refused with their own reason.
    """
    if not isinstance(course_id, str) or not course_id:
        raise InvalidId(f"course id {course_id!r} is empty or not text; "
                        "give an id like course-v1:ORG+COURSE+RUN or ORG/COURSE/RUN")
    shown = course_id if len(course_id) <= 80 else course_id[:80] + "..."
    if len(course_id) > MAX_COURSE_ID_CHARS:
        raise InvalidId(f"course id {shown!r} is {len(course_id)} characters, "
                        f"over the limit of {MAX_COURSE_ID_CHARS}; check the id")
    for prefix, what in OTHER_KINDS.items():
        if course_id.startswith(prefix):
            raise InvalidId(f"{shown!r} is {what}; give a course id like course-v1:ORG+COURSE+RUN")
    try:
        key = OpaqueCourseKey.from_string(course_id)
    except InvalidKeyError:
        key = None
    if not isinstance(key, CourseLocator) or any(not part.strip(".") for part in (key.org, key.course, key.run)):
        raise InvalidId(f"course id {shown!r} is not a valid course key (course-v1:ORG+COURSE+RUN or "
                        "ORG/COURSE/RUN, as Open edX writes them); check the id")
    return CourseKey(key.org, key.course, key.run, deprecated=key.deprecated)


def quote_segment(text):
    """Quote one key segment; encode a segment of only dots so no key has ``.`` or ``..``."""
    quoted = quote(text, safe=SAFE)
    if quoted in (".", ".."):
        quoted = quoted.replace(".", "%2E")
    return quoted


def local_name(segment, limit=120):
    """Return a file name for a key segment that fits any file system: at most ``limit`` bytes.

    A segment is ASCII (``quote_segment``); a longer one (a course id of
    many non-Latin letters, say) keeps a readable prefix and ends in a hash of
    the whole, so two ids never share a name.
    """
    if len(segment) <= limit:
        return segment
    digest = hashlib.sha256(segment.encode()).hexdigest()[:16]
    return f"{segment[:limit - 17]}-{digest}"


def check_asset_name(course, name):
    """Refuse an asset name that cannot become a safe S3 key segment."""
    if not isinstance(name, str) or not name:
        raise InvalidId(f"course {course}: an asset has an empty name; fix it in Studio, then re-run")
    bad = [c for c in name if unicodedata.category(c) in ("Cc", "Cf", "Cs")]
    if bad:
        raise InvalidId(f"course {course}: asset {name!r} has control characters "
                        f"({', '.join(repr(c) for c in sorted(set(bad)))}); rename it in Studio, then re-run")


def new_run_id(now=None):
    """Return a fresh run id: UTC time, then 32 random bits (sortable, unique)."""
    now = now or datetime.now(timezone.utc)
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(4)


EPOCH = re.compile(r"^e([1-9][0-9]*)$")
_KEPT = threading.Lock()


def epoch_segment(epoch):
    """Return the key level of an epoch: ``e`` then the number, as in ``e12``."""
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 1:
        raise ValueError(f"epoch {epoch!r} is not a whole number from 1")
    return f"e{epoch}"


class Layout:
    """Build the S3 keys of one course under the configured prefixes.

    Every object a claim writes is under its own epoch, ``{root}/{course}/e{epoch}/``,
    so no runner can ever name another epoch's objects by accident. The commit
    key sits outside every epoch and names the committed one. Keys of 0.3.0 and
    earlier (no epoch level) read as epoch 0.
    """

    def __init__(self, cfg, course):
        self.cfg = cfg
        self.course = course
        seg = course.segment
        self.staging_root = f"{cfg.staging_prefix}/{seg}/"
        self.live_root = f"{cfg.live_prefix}/{seg}/"
        self.marker = f"{self.live_root}_COMMIT.json"
        self.legacy_marker = f"{self.live_root}_MIGRATED.json"  # 0.1.0 to 0.3.0: commit or fence
        self.legacy_transcripts = f"{self.live_root}transcripts/"
        self.legacy_manifest = f"{self.live_root}_manifest.parquet"
        self.record = f"{cfg.state_prefix}/courses/{seg}.json"
        self.events = f"{cfg.state_prefix}/events/{seg}/"
        self.handoff = f"{cfg.state_prefix}/handoff/{seg}.parquet"  # what Open edX may register (etl.handoff)
        self.receipts = f"{cfg.state_prefix}/receipts/{seg}/"  # what it did register, one object per register
        self.phase2 = f"{cfg.state_prefix}/phase2/{seg}.json"  # hand-off, registration and check, summed up
        self.mints = f"{cfg.state_prefix}/mints/{seg}/"  # the video ids --mint-ids set, one object per run
        longest = max(len(k.encode()) for k in (self.live_manifest(999999), self.staging_manifest(999999),
                                                f"{self.events}v0000000000-{'20260101T000000.000Z-' * 2}.json"))
        if longest > MAX_KEY_BYTES:  # before anything is read or written: no key of the course could be
            raise InvalidId(f"course {course}: its id is a {len(seg.encode())}-byte S3 key segment, which makes "
                            f"keys of {longest} bytes, over S3's {MAX_KEY_BYTES}; the tool cannot migrate it under "
                            "these prefixes; shorten --staging-prefix, --live-prefix and --state-prefix if they "
                            "are long, or leave this course in the contentstore")

    @classmethod
    def of(cls, cfg, course):
        """Return the course's Layout under ``cfg``'s prefixes, built once and kept (for the last 4,096 courses)."""
        kept = cfg.cached("layouts", OrderedDict)
        with _KEPT:
            found = kept.get(course)
            if found is not None:
                kept.move_to_end(course)
                return found
        found = cls(cfg, course)
        with _KEPT:
            kept[course] = found
            if len(kept) > 4096:
                kept.popitem(last=False)
        return found

    def staging_epoch(self, epoch):
        """Return the prefix of the staging run an epoch wrote."""
        return f"{self.staging_root}{epoch_segment(epoch)}/"

    def staging_manifest(self, epoch):
        """Return the key of a staging run's manifest."""
        return f"{self.staging_epoch(epoch)}manifest.parquet"

    def staged_key(self, epoch, name):
        """Return the staging key of one transcript."""
        return f"{self.staging_epoch(epoch)}transcripts/{quote_segment(name)}"

    def live_epoch(self, epoch):
        """Return the live prefix of an epoch; epoch 0 is the layout of 0.3.0 and earlier."""
        return self.live_root if epoch == 0 else f"{self.live_root}{epoch_segment(epoch)}/"

    def live_transcripts(self, epoch):
        """Return the prefix of an epoch's live transcripts."""
        return f"{self.live_epoch(epoch)}transcripts/"

    def live_manifest(self, epoch):
        """Return the key of an epoch's live manifest."""
        return self.legacy_manifest if epoch == 0 else f"{self.live_epoch(epoch)}manifest.parquet"

    def live_key(self, epoch, name):
        """Return the live key of one transcript."""
        return f"{self.live_transcripts(epoch)}{quote_segment(name)}"

    def asset_keys(self, epoch, name):
        """Return (staged_key, live_key) for an asset, refusing names too long for S3."""
        check_asset_name(self.course, name)
        staged, live = self.staged_key(epoch, name), self.live_key(epoch, name)
        longest = max(len(staged.encode()), len(live.encode()))
        if longest > MAX_KEY_BYTES:
            raise InvalidId(f"course {self.course}: asset {name[:60]!r}... makes an S3 key of {longest} bytes, "
                            f"over S3's {MAX_KEY_BYTES}; rename it in Studio or shorten the prefixes")
        return staged, live

    def epoch_of(self, key):
        """Return the epoch a key of this course belongs to: 0 for the layout of 0.3.0, None for the commit key.

        Only keys under the course's staging or live root have an epoch; any
        other key raises ValueError, so no caller can treat it as the course's.
        """
        if key == self.marker:
            return None
        for root in (self.staging_root, self.live_root):
            if key.startswith(root):
                match = EPOCH.match(key[len(root):].split("/", 1)[0])
                return int(match.group(1)) if match else 0
        raise ValueError(f"{key} is not a key of course {self.course}")


def check_prefix(name, value):
    """Refuse a prefix that is empty, absolute, or climbs out of the bucket."""
    if not isinstance(value, str) or not value or value.startswith("/") or value.endswith("/"):
        raise InvalidId(f"{name} {value!r} must be a non-empty key prefix without a leading or trailing '/'")
    if any(part in ("", ".", "..") for part in value.split("/")) or any(
            unicodedata.category(c) == "Cc" for c in value):
        raise InvalidId(f"{name} {value!r} has an empty, '.' or '..' level or a control character")
    return value
