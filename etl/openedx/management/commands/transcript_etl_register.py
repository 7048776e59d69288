"""``./manage.py cms transcript_etl_register COURSE...|--courses FILE [--with-shared] [--commit] [--undo]``."""

from django.core.management.base import BaseCommand

from etl.model.config import config_from_env
from etl.model.errors import EtlError
from etl.openedx import register, undo
from etl.openedx.arguments import add_courses, course_ids, refused


class Command(BaseCommand):
    help = ("Turn Phase II on for committed courses: upload each transcript their hand-off (python -m etl handoff) "
            "found the LMS serving into edx-val, as Studio uploads it, where no learner of any course sharing the "
            "video would notice; a dry run unless --commit. --undo removes the rows and copies a registration made.")

    def add_arguments(self, parser):
        add_courses(parser)
        parser.add_argument("--commit", action="store_true", help="write to edx-val; without it, only say what")
        parser.add_argument("--undo", action="store_true", help="remove exactly the rows the receipts list")
        parser.add_argument("--mint-ids", action="store_true",
                            help="also give each video without an edx_video_id that serves a transcript an id, as "
                                 "Studio does (written through the modulestore; --undo clears them)")
        parser.add_argument("--with-shared", action="store_true",
                            help="register (or undo) each course together with every course that shares a video "
                                 "with it, in one transaction; refused unless all are committed and agree")

    def handle(self, *args, **options):
        ids = course_ids(options)
        cfg = config_from_env(manifest_dir="", progress=False)  # the same ETL_* environment as the tool
        codes, site, done = [], None, set()
        for course_id in ids:
            if course_id in done:  # registered already, as another named course's family
                continue
            try:
                if not options["undo"] and site is None:
                    site = register.read_site(cfg)  # read once for every course of the command
                result = self._one(cfg, course_id, options, site)
                done |= set(result.courses)
            except EtlError as err:
                self.stderr.write(f"etl: error: {err}")
                codes.append(err.exit_code)
        if codes:  # the tool's exit codes: 2 bad input, 3 refused, 4 failed
            raise refused(codes, len(ids), "were refused or failed")

    def _one(self, cfg, course_id, options, site):
        commit, shared = options["commit"], options["with_shared"]
        if options["undo"]:
            result = undo.plan_undo(cfg, course_id, with_shared=shared)
            if commit:
                undo.commit_undo(cfg, result)
        else:
            if commit:  # what a stopped run left goes first, so the plan reads the course as it will be
                _, cleared = register.finish_stopped(cfg, [course_id])
                if cleared:
                    site.moved([course_id])
            result = register.plan(cfg, course_id, with_shared=shared, site=site, mint_ids=options["mint_ids"])
            if commit:
                register.commit(cfg, result)
        verb = ("removed" if options["undo"] else "registered") if commit else (
            "would remove" if options["undo"] else "would register")
        for orphan in result.orphans:
            closed = f"; its receipt closed: {orphan.close}" if orphan.close else ""
            self.stdout.write(f"{'deleted' if commit else 'would delete'} {len(orphan.names)} copies no row holds "
                              f"({orphan.key}){closed}")
        for entry in result.mints:
            if options["undo"]:
                key, doc, _ = entry
                for minted in doc.get("minted") or []:
                    self.stdout.write(f"{'cleared' if commit else 'would clear'} {doc['course_id']} "
                                      f"{minted['usage_key']} ({', '.join(minted['branches'])}): {minted['video_id']}")
            else:
                self.stdout.write(f"{'minted' if commit else 'would mint'} {entry.course_id} {entry.usage_key} "
                                  f"({', '.join(entry.branches)}): {entry.video_id}; then served from edx-val: "
                                  f"{', '.join(entry.languages)}")
        for item in result.act:
            self.stdout.write(self._acted(verb, item))
        for skip in result.skip:
            row = skip.row
            where = f" {row['usage_key']} ({row['branch']})" if row.get("branch") else ""
            self.stdout.write(f"skip {row.get('course_id') or result.course_id} {row.get('edx_video_id') or '-'} "
                              f"{row.get('language')}{where}: {skip}")
        done = verb.split()[-1] if commit else "to " + verb.split()[-1]
        together = f" (with {', '.join(result.courses[1:])})" if len(result.courses) > 1 else ""
        self.stdout.write(f"{result.course_id}{together}: {len(result.act)} {done}, {len(result.skip)} skipped"
                          f"{'' if commit else '; dry run: add --commit to write'}")
        return result

    @staticmethod
    def _acted(verb, item):
        row = getattr(item, "row", item)
        said = f", as {row['difference']}" if row.get("difference") else ""
        extra = " (creating its external Video)" if row.get("create_video") and "remove" not in verb else ""
        courses = getattr(item, "courses", [row.get("course_id")])
        shared = getattr(item, "shared", [])
        serves = f"; serves {', '.join(courses)}" if len(courses) > 1 else ""
        serves += f"; also serves {', '.join(shared)}, which shares the video (same bytes)" if shared else ""
        return (f"{verb} {courses[0]} {row['edx_video_id']} {row['language']}: "
                f"{row.get('storage_name') or row['live_key']} ({row['file_format']}{said}){extra}{serves}")
