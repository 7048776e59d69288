"""Load a course export's OLX video blocks into a modulestore the way Open edX stores them.

Split (``course-v1:`` courses): a published and a draft structure in
``modulestore.structures``, named by the course's ``modulestore.active_versions``
row, each block's explicitly set settings in ``fields``. The old Mongo
modulestore (``ORG/COURSE/RUN``): one ``modulestore`` document per block, its
settings in ``metadata``, a draft as a second document with revision ``draft``.
"""

import json
import os
import xml.etree.ElementTree as ET
from datetime import datetime, timezone

from bson import ObjectId
from bson.son import SON

from etl.model.layout import parse_course_id

VIDEO_TYPES = ("video", "videoalpha")
JSON_FIELDS = ("transcripts", "html5_sources")
WHEN = datetime(2026, 1, 1, tzinfo=timezone.utc)


def video_fields(element):
    """Return the settings an OLX <video> sets, typed as the VideoBlock stores them."""
    fields = {}
    for name, value in element.attrib.items():
        if name in JSON_FIELDS:
            fields[name] = json.loads(value) if value else ({} if name == "transcripts" else [])
        elif name in ("sub", "edx_video_id", "youtube_id_1_0", "display_name"):
            fields[name] = value
    speeds = dict(part.split(":", 1) for part in element.attrib.get("youtube", "").split(",") if ":" in part)
    if "youtube_id_1_0" not in fields and speeds.get("1.00"):
        fields["youtube_id_1_0"] = speeds["1.00"]
    return fields


def read_blocks(export_dir):
    """Return ({(type, url_name): fields} published, the same for drafts) from an export folder."""
    found = {"published": {}, "draft": {}}
    for branch, base in (("published", export_dir), ("draft", os.path.join(export_dir, "drafts"))):
        for block_type in VIDEO_TYPES:
            folder = os.path.join(base, block_type)
            if not os.path.isdir(folder):
                continue
            for name in sorted(os.listdir(folder)):
                if name.endswith(".xml"):
                    root = ET.parse(os.path.join(folder, name)).getroot()
                    found[branch][(block_type, name[:-4])] = video_fields(root)
    return found["published"], found["draft"]


def load_videos(db, export_dir, course_id):
    """Store the export's video blocks in ``db``'s modulestore for ``course_id``; return the published blocks."""
    course = parse_course_id(course_id)
    published, drafts = read_blocks(export_dir)
    if course.deprecated:
        for branch, blocks in (("published", published), ("draft", drafts)):
            for (block_type, name), fields in blocks.items():
                db["modulestore"].insert_one({
                    "_id": SON([("tag", "i4x"), ("org", course.org), ("course", course.course),
                                ("category", block_type), ("name", name),
                                ("revision", "draft" if branch == "draft" else None)]),
                    "metadata": fields, "definition": {"data": ""}, "edit_info": {"edited_on": WHEN}})
        return published
    index = db["modulestore.active_versions"].find_one({"org": course.org, "course": course.course,
                                                        "run": course.run})
    if index is None:
        index = {"_id": ObjectId(), "org": course.org, "course": course.course, "run": course.run,
                 "versions": {"draft-branch": ObjectId(), "published-branch": ObjectId()}, "schema_version": 1}
        db["modulestore.active_versions"].insert_one(index)
    for branch, blocks in (("published", published), ("draft", {**published, **drafts})):
        db["modulestore.structures"].insert_one({
            "_id": index["versions"][f"{branch}-branch"], "root": ["course", course.run], "schema_version": 1,
            "blocks": [{"block_type": block_type, "block_id": name, "fields": fields, "definition": ObjectId(),
                        "defaults": {}, "asides": [], "edit_info": {"edited_on": WHEN}}
                       for (block_type, name), fields in blocks.items()]})
    return published
