"""``./manage.py lms transcript_etl_check COURSE...|--courses FILE``: does edx-val serve what was registered?"""

from django.core.management.base import BaseCommand, CommandError

from etl.model.config import config_from_env
from etl.model.errors import EtlError, NotVerified, UsageError
from etl.openedx.check import check
from etl.source.discover import read_course_file


class Command(BaseCommand):
    help = ("Read every row the courses' registrations made through edx-val, with this service's settings (run it "
            "in the LMS), and compare its bytes with the receipt; exit 0 when all match, 5 naming those that do not.")

    def add_arguments(self, parser):
        parser.add_argument("courses", nargs="*", metavar="COURSE", help="course ids")
        parser.add_argument("--courses", dest="courses_file", metavar="FILE",
                            help="a file of course ids, one per line; '#' starts a comment")

    def handle(self, *args, **options):
        try:
            ids = list(options["courses"]) + (read_course_file(options["courses_file"])
                                              if options["courses_file"] else [])
        except UsageError as err:
            raise CommandError(str(err), returncode=2) from None
        if not ids:
            raise CommandError("no courses given; name course ids, or use --courses FILE", returncode=2)
        cfg = config_from_env(manifest_dir="", progress=False)
        codes, bad = [], 0
        for course_id in dict.fromkeys(ids):
            try:
                results = check(cfg, course_id)
            except EtlError as err:
                self.stderr.write(f"etl: error: {err}")
                codes.append(err.exit_code)
                continue
            for row, problem in results:
                if problem:
                    bad += 1
                    self.stdout.write(f"FAIL {course_id} {row['edx_video_id']} {row['language']}: {problem}")
            failed = sum(1 for _, problem in results if problem)
            self.stdout.write(f"{course_id}: {len(results) - failed} of {len(results)} rows serve the registered "
                              "bytes" + (f"; {failed} do not (see FAIL above)" if failed else ""))
        if codes:
            raise CommandError(f"{len(codes)} of {len(set(ids))} course(s) could not be checked; see above",
                               returncode=2 if 2 in codes else max(codes))
        if bad:
            raise CommandError(f"{bad} registered rows do not serve their bytes; see FAIL above",
                               returncode=NotVerified.exit_code)
