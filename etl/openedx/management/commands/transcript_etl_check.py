"""``./manage.py lms transcript_etl_check COURSE...|--courses FILE``: does edx-val serve what was registered?"""

from django.core.management.base import BaseCommand, CommandError

from etl.model.config import config_from_env
from etl.model.errors import EtlError, NotVerified
from etl.openedx.arguments import add_courses, course_ids, refused
from etl.openedx.check import check


class Command(BaseCommand):
    help = ("Read every row the courses' registrations made through edx-val, with this service's settings (run it "
            "in the LMS), and compare its bytes with the receipt; exit 0 when all match, 5 naming those that do not.")

    def add_arguments(self, parser):
        add_courses(parser)

    def handle(self, *args, **options):
        ids = course_ids(options)
        cfg = config_from_env(manifest_dir="", progress=False)
        codes, bad = [], 0  # bad: rows that fail, over all courses
        for course_id in ids:
            try:
                results = check(cfg, course_id)
            except EtlError as err:
                self.stderr.write(f"etl: error: {err}")
                codes.append(err.exit_code)
                continue
            failed = [(row, problem) for row, problem in results if problem]
            for row, problem in failed:
                self.stdout.write(f"FAIL {course_id} {row['edx_video_id']} {row['language']}: {problem}")
            bad += len(failed)
            self.stdout.write(f"{course_id}: {len(results) - len(failed)} of {len(results)} rows serve the registered "
                              "bytes" + (f"; {len(failed)} do not (see FAIL above)" if failed else ""))
        if codes:
            raise refused(codes, len(ids), "could not be checked")
        if bad:
            raise CommandError(f"{bad} registered rows do not serve their bytes; see FAIL above",
                               returncode=NotVerified.exit_code)
