"""The course arguments the plugin's management commands share: ids, or ``--courses FILE``."""

from django.core.management.base import CommandError

from etl.model.errors import UsageError
from etl.source.discover import read_course_file


def add_courses(parser):
    """Add ``COURSE...`` and ``--courses FILE`` to a command's parser."""
    parser.add_argument("courses", nargs="*", metavar="COURSE", help="course ids")
    parser.add_argument("--courses", dest="courses_file", metavar="FILE",
                        help="a file of course ids, one per line; '#' starts a comment")


def course_ids(options):
    """Return the course ids given, without repeats; exit 2 when there are none or the file cannot be read."""
    try:
        ids = list(options["courses"]) + (read_course_file(options["courses_file"]) if options["courses_file"]
                                          else [])
    except UsageError as err:
        raise CommandError(str(err), returncode=2) from None
    if not ids:
        raise CommandError("no courses given; name course ids, or use --courses FILE", returncode=2)
    return list(dict.fromkeys(ids))


def refused(codes, total, what):
    """Return the CommandError for courses that raised errors with these exit codes: 2 wins, else the highest."""
    return CommandError(f"{len(codes)} of {total} course(s) {what}; see above",
                        returncode=2 if 2 in codes else max(codes))
