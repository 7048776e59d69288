"""``./manage.py cms transcript_etl_register COURSE...|--courses FILE [--commit] [--undo]``: turn Phase II on."""

from django.core.management.base import BaseCommand

from etl.model.config import config_from_env
from etl.model.errors import EtlError
from etl.openedx import register
from etl.openedx.arguments import add_courses, course_ids, refused


class Command(BaseCommand):
    help = ("Turn Phase II on for committed courses: upload each transcript their hand-off (python -m etl handoff) "
            "found the LMS serving into edx-val, as Studio uploads it; a dry run unless --commit. --undo removes "
            "the rows and copies a registration made.")

    def add_arguments(self, parser):
        add_courses(parser)
        parser.add_argument("--commit", action="store_true", help="write to edx-val; without it, only say what")
        parser.add_argument("--undo", action="store_true", help="remove exactly the rows the receipts list")

    def handle(self, *args, **options):
        ids = course_ids(options)
        cfg = config_from_env(manifest_dir="", progress=False)  # the same ETL_* environment as the tool
        codes = []
        for course_id in ids:
            try:
                self._one(cfg, course_id, options["commit"], options["undo"])
            except EtlError as err:
                self.stderr.write(f"etl: error: {err}")
                codes.append(err.exit_code)
        if codes:  # the tool's exit codes: 2 bad input, 3 refused, 4 failed
            raise refused(codes, len(ids), "were refused or failed")

    def _one(self, cfg, course_id, commit, undo):
        result = (register.plan_undo if undo else register.plan)(cfg, course_id)
        if commit:
            (register.commit_undo if undo else register.commit)(cfg, result)
        verb = ("removed" if undo else "registered") if commit else ("would remove" if undo else "would register")
        for row in result.act:
            extra = " (creating its external Video)" if row.get("create_video") and not undo else ""
            said = f", as {row['difference']}" if row.get("difference") else ""
            self.stdout.write(f"{verb} {result.course_id} {row['edx_video_id']} {row['language']}: "
                              f"{row.get('storage_name') or row['live_key']} ({row['file_format']}{said}){extra}")
        for row, reason in result.skip:
            where = f" {row['usage_key']} ({row['branch']})" if row.get("branch") else ""
            self.stdout.write(f"skip {result.course_id} {row.get('edx_video_id') or '-'} {row.get('language')}"
                              f"{where}: {reason}")
        done = verb.split()[-1] if commit else "to " + verb.split()[-1]
        self.stdout.write(f"{result.course_id}: {len(result.act)} {done}, {len(result.skip)} skipped"
                          f"{'' if commit else '; dry run: add --commit to write'}")
