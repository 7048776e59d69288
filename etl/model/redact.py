"""Keep secrets out of every output: MongoDB passwords and AWS secret keys, whatever characters they hold.

A secret is registered once, when the configuration is read; ``scrub`` then
replaces it, in every form it may take (as typed in a URI, percent-decoded),
wherever it appears: error lines, ``--debug`` tracebacks, log lines, and the
error text stored in the status table.
"""

import os
import threading
from urllib.parse import unquote, unquote_plus

from pymongo.errors import InvalidURI
from pymongo.uri_parser import parse_userinfo


MASK = "***"
SHORTEST = 4  # a shorter secret would mask ordinary words in every line; URIs are masked by structure anyway
_secrets = set()
_lock = threading.Lock()


def register(value):
    """Treat ``value`` (and its percent-decoded forms) as a secret from now on."""
    if not value:
        return
    with _lock:
        _secrets.update(v for v in {value, unquote(value), unquote_plus(value)} if len(v) >= SHORTEST)


def register_environment(environ=None):
    """Register the AWS secrets an operator may have exported."""
    environ = os.environ if environ is None else environ
    for name in ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "ETL_AWS_SECRET_ACCESS_KEY", "ETL_AWS_SESSION_TOKEN"):
        register(environ.get(name))


def _split(uri):
    """Return (scheme, userinfo or None, rest) of a MongoDB URI.

    The userinfo ends at the last ``@`` before the hosts, so a password whose
    ``@``, ``/`` or ``:`` the operator forgot to percent-encode is still all of it.
    """
    scheme, sep, after = str(uri).partition("://")
    if not sep:
        return None, None, str(uri)
    userinfo, at, rest = after.rpartition("@")
    return scheme, (userinfo if at else None), (rest if at else after)


def register_uri(uri):
    """Register the password of a MongoDB URI, as pymongo reads it and as it was typed."""
    _, userinfo, _ = _split(uri)
    if userinfo is None or ":" not in userinfo:
        return
    register(userinfo.split(":", 1)[1])
    try:
        register(parse_userinfo(userinfo)[1])  # pymongo's own reading of it
    except InvalidURI:
        pass


def uri(value):
    """Return a MongoDB URI fit to print: user name kept, password replaced by ``***``."""
    register_uri(value)
    scheme, userinfo, rest = _split(value)
    if userinfo is None:
        return scrub(value)
    user = userinfo.split(":", 1)[0]
    return scrub(f"{scheme}://{user}:{MASK}@{rest}" if ":" in userinfo else f"{scheme}://{user}@{rest}")


def scrub(text):
    """Replace every registered secret in ``text`` with ``***``."""
    text = str(text)
    with _lock:
        found = sorted((s for s in _secrets if s in text), key=len, reverse=True)
    for secret in found:
        text = text.replace(secret, MASK)
    return text
