"""Serve moto's S3 on a loopback port, in a process of its own: python -m tests.children.moto_server PORT.

A process of its own lets the server and the tests use both cores; moto's list
of its own services is read once, since its server otherwise lists and stats
its package folder twice on every request to route it.
"""

import logging
import sys

from moto import backends
from moto.server import main

if __name__ == "__main__":
    services = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: services
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    main(["-H", "127.0.0.1", "-p", sys.argv[1]])
