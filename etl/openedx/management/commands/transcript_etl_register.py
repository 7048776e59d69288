"""``./manage.py cms transcript_etl_register COURSE... [--commit] [--undo]``: register hand-offs in edx-val, in place."""

from django.core.management.base import BaseCommand, CommandError

from etl.model.config import config_from_env
from etl.model.errors import EtlError
from etl.openedx import register


class Command(BaseCommand):
    help = ("Register committed courses' migrated transcripts in edx-val, in place (no upload), from their "
            "hand-off (python -m etl handoff); a dry run unless --commit. --undo removes a registration's rows.")

    def add_arguments(self, parser):
        parser.add_argument("courses", nargs="+", metavar="COURSE", help="course ids")
        parser.add_argument("--commit", action="store_true", help="write to edx-val; without it, only say what")
        parser.add_argument("--undo", action="store_true", help="remove exactly the rows the receipts list")

    def handle(self, *args, **options):
        cfg = config_from_env(manifest_dir="", progress=False)  # the same ETL_* environment as the tool
        failed = []
        for course_id in options["courses"]:
            try:
                self._one(cfg, course_id, options["commit"], options["undo"])
            except EtlError as err:
                self.stderr.write(f"etl: error: {err}")
                failed.append(course_id)
        if failed:
            raise CommandError(f"{len(failed)} of {len(options['courses'])} course(s) were refused; see above")

    def _one(self, cfg, course_id, commit, undo):
        result = (register.plan_undo if undo else register.plan)(cfg, course_id)
        verb = ("remove" if undo else "register") if commit else ("would remove" if undo else "would register")
        for row in result.act:
            self.stdout.write(f"{verb} {result.course_id} {row['edx_video_id']} {row['language']}: "
                              f"{row['storage_name']} ({row['file_format']})")
        for row, reason in result.skip:
            where = f" {row['usage_key']} ({row['branch']})" if row.get("usage_key") else ""
            self.stdout.write(f"skip {result.course_id} {row['edx_video_id'] or '-'} {row['language']}{where}: {reason}")
        if commit:
            (register.commit_undo if undo else register.commit)(cfg, result)
        done = "removed" if undo else "registered"
        self.stdout.write(f"{result.course_id}: {len(result.act)} {done if commit else 'to ' + verb.split()[-1]}, "
                          f"{len(result.skip)} skipped{'' if commit else '; dry run: add --commit to write'}")
