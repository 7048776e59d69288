"""Every course on the site that uses a video: split's active structures, indexed by ``edx_video_id``.

edx-val keys a transcript by (video, language), not by course, and a course
rerun keeps its blocks' ``edx_video_id``; so one registration reaches every
course whose blocks name the video. ``Site`` reads split's course index
(``modulestore.active_versions``, walked by its (org, course, run) index) and
then each course's published and draft structures by ``_id``, projected to the
blocks' types and video ids, once; a course whose branch heads have moved since
is read again (``refresh``). What a course's blocks say in full, and the
contentstore assets the LMS would read for them, are read on demand and kept.
Old-style courses are not indexed: no release that runs the plugin serves them.
"""

from etl.model.errors import InvalidId
from etl.model.layout import parse_course_id
from etl.source import contentstore, discover, modulestore
from etl.source.limits import read_limiter

_BATCH = 100  # structures per query


class Site:
    """The split courses of a site, their branch heads, and which of them name each video id."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.heads = {}  # course id -> {branch: structure id}
        self.users = {}  # video id -> {course ids}
        self._named = {}  # course id -> {video ids}
        self._videos = {}  # course id -> [modulestore.Video], from its heads
        self._assets = {}  # (course id, asset name) -> bytes, or None when it has no such asset

    @classmethod
    def read(cls, cfg):
        """Read the whole site's index: every split course's heads, then which videos its structures name."""
        site = cls(cfg)
        db = modulestore.database(cfg)
        index = db["modulestore.active_versions"]
        for org, course in discover.groups(cfg, index, "org", "course"):
            read_limiter(cfg).acquire()
            for doc in index.find({"org": org, "course": course}, {"run": 1, "versions": 1}):
                if not isinstance(doc.get("run"), str) or doc["run"] == "library":
                    continue
                try:
                    course_id = str(parse_course_id(f"course-v1:{org}+{course}+{doc['run']}"))
                except InvalidId:
                    continue
                site.heads[course_id] = modulestore.branch_heads(doc)
        site._index(sorted(site.heads))
        return site

    def _index(self, course_ids):
        owner = {sid: course_id for course_id in course_ids for sid in self.heads.get(course_id, {}).values()}
        for course_id in course_ids:
            for video_id in self._named.pop(course_id, set()):
                self.users.get(video_id, set()).discard(course_id)
            self._videos.pop(course_id, None)
        ids = sorted(owner, key=str)
        db = modulestore.database(self.cfg)
        for start in range(0, len(ids), _BATCH):
            read_limiter(self.cfg).acquire()
            for doc in db["modulestore.structures"].find({"_id": {"$in": ids[start:start + _BATCH]}},
                                                         {"blocks.block_type": 1, "blocks.fields.edx_video_id": 1}):
                course_id = owner[doc["_id"]]
                for block in doc.get("blocks") or []:
                    video_id = (block.get("fields") or {}).get("edx_video_id")
                    if block.get("block_type") in modulestore.VIDEO_TYPES and isinstance(video_id, str) \
                            and video_id.strip():
                        self._named.setdefault(course_id, set()).add(video_id.strip())
                        self.users.setdefault(video_id.strip(), set()).add(course_id)

    def courses(self, video_id):
        """Return the courses whose blocks, in either branch, name ``video_id``."""
        return sorted(self.users.get(video_id, ()))

    def videos(self, course_id):
        """Return the video ids a course's blocks name, in either branch."""
        return sorted(self._named.get(course_id, ()))

    def family(self, course_id):
        """Return the course and every course that shares a video with it, directly or through another: the named first."""
        found, todo = {course_id}, [course_id]
        while todo:
            for video_id in self.videos(todo.pop()):
                for other in self.courses(video_id):
                    if other not in found:
                        found.add(other)
                        todo.append(other)
        return [course_id] + sorted(found - {course_id})

    def blocks(self, course_id, video_id=None):
        """Return a course's video blocks in both branches (those naming ``video_id``, when given)."""
        if course_id not in self._videos:
            course = parse_course_id(course_id)
            heads = self.heads.get(course_id)
            self._videos[course_id] = modulestore.videos(self.cfg, course, heads) if heads is not None else \
                modulestore.videos(self.cfg, course)
        return [v for v in self._videos[course_id]
                if video_id is None or (v.fields.get("edx_video_id") or "").strip() == video_id]

    def assets(self, course_id):
        """Return the lookup the LMS makes in a course's contentstore: ``name -> bytes or None``, read once each."""
        course = parse_course_id(course_id)

        def find(name):
            key = (course_id, name)
            if key not in self._assets:
                self._assets[key] = contentstore.read_named(self.cfg, course, [name]).get(name)
            return self._assets[key]
        return find

    def moved(self, course_ids):
        """Re-read the heads of these courses; return those whose heads moved, their index read again."""
        moved = []
        for course_id in course_ids:
            heads = modulestore.heads(self.cfg, parse_course_id(course_id))
            if heads != self.heads.get(course_id):
                self.heads[course_id] = heads
                moved.append(course_id)
        self._index(moved)
        return moved
