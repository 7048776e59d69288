"""A stand-in for Studio's modulestore in the tests: it writes split's documents the way split does.

``set_video_id`` copies the branch's head structure into a new one whose
``previous_version`` is that head, with the block's ``edx_video_id`` set and its
``edit_info`` moved on, then moves that branch's head in
``modulestore.active_versions`` with a conditional update (on the head it read),
and leaves the other branch alone. Any other call raises: the plugin's code may
use nothing more than Studio's adapter offers (``etl.openedx.modulestore``).
"""

import copy
from datetime import datetime, timezone

from bson import ObjectId

from etl.model.layout import parse_course_id
from etl.source import modulestore

MGMT_COMMAND = -3  # ModuleStoreEnum.UserID.mgmt_command
writes = []  # (course, usage key, branch, video id): every write, for the tests; and a hook before each
before_write = [None]


class StandIn:
    def __init__(self, cfg):
        self.cfg = cfg

    def set_video_id(self, course_id, usage_key, branch, video_id, expected=""):
        from etl.openedx.modulestore import Changed

        if before_write[0]:
            before_write[0](course_id, usage_key, branch, video_id)
        course = parse_course_id(course_id)
        db = modulestore.database(self.cfg)
        index = db["modulestore.active_versions"].find_one({"org": course.org, "course": course.course,
                                                            "run": course.run})
        head = index["versions"][f"{branch}-branch"]
        structure = db["modulestore.structures"].find_one({"_id": head})
        new = copy.deepcopy(structure)
        new.update(_id=ObjectId(), previous_version=head, original_version=structure.get("original_version", head),
                   edited_by=MGMT_COMMAND, edited_on=datetime.now(timezone.utc))
        block_id = usage_key.rsplit("@", 1)[1]
        block = next(b for b in new["blocks"] if b["block_id"] == block_id and b["block_type"] in ("video",
                                                                                                   "videoalpha"))
        found = (block.get("fields") or {}).get("edx_video_id") or ""
        if found.strip() != expected:
            raise Changed(course_id, usage_key, branch, found)
        block.setdefault("fields", {})["edx_video_id"] = video_id
        block["edit_info"] = dict(block.get("edit_info") or {}, previous_version=(block.get("edit_info") or {}).get(
            "update_version"), update_version=new["_id"], source_version=None, edited_by=MGMT_COMMAND,
                                  edited_on=new["edited_on"])
        db["modulestore.structures"].insert_one(new)
        moved = db["modulestore.active_versions"].update_one(
            {"_id": index["_id"], f"versions.{branch}-branch": head}, {"$set": {f"versions.{branch}-branch": new["_id"]}})
        if moved.modified_count != 1:
            raise RuntimeError(f"{course_id}: the {branch} branch moved while a block was written")
        writes.append((course_id, usage_key, branch, video_id))
        return str(new["_id"])

    def publish(self, course_id, usage_key, draft_head):
        """Copy one block from the draft head into a new published structure, as split's publish of a leaf does."""
        from etl.openedx.modulestore import Changed

        course = parse_course_id(course_id)
        db = modulestore.database(self.cfg)
        index = db["modulestore.active_versions"].find_one({"org": course.org, "course": course.course,
                                                            "run": course.run})
        if str(index["versions"]["draft-branch"]) != draft_head:
            raise Changed(course_id, usage_key, "draft", "(a newer draft)")
        block_id = usage_key.rsplit("@", 1)[1]
        draft = db["modulestore.structures"].find_one({"_id": index["versions"]["draft-branch"]})
        head = index["versions"]["published-branch"]
        new = copy.deepcopy(db["modulestore.structures"].find_one({"_id": head}))
        new.update(_id=ObjectId(), previous_version=head, edited_by=MGMT_COMMAND, edited_on=datetime.now(timezone.utc))
        source = next(b for b in draft["blocks"] if b["block_id"] == block_id)
        published = copy.deepcopy(source)
        published["edit_info"] = dict(source.get("edit_info") or {}, source_version=(source.get("edit_info") or {})
                                      .get("update_version"), update_version=new["_id"])
        new["blocks"] = [published if b["block_id"] == block_id else b for b in new["blocks"]]
        db["modulestore.structures"].insert_one(new)
        moved = db["modulestore.active_versions"].update_one(
            {"_id": index["_id"], "versions.published-branch": head}, {"$set": {"versions.published-branch": new["_id"]}})
        if moved.modified_count != 1:
            raise RuntimeError(f"{course_id}: the published branch moved while a block was published")
        writes.append((course_id, usage_key, "publish", source["fields"].get("edx_video_id")))
        return str(new["_id"])

    def __getattr__(self, name):
        raise NotImplementedError(f"the split stand-in does not implement {name}: the adapter offers set_video_id")
