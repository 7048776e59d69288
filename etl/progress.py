"""Show progress: a tqdm bar on a terminal, nothing otherwise (the log has one line per event)."""

import sys

from tqdm import tqdm


def bar(cfg, total, desc, unit="transcript"):
    """Return a progress bar, disabled unless enabled in cfg or stderr is a terminal."""
    enabled = cfg.progress if cfg.progress is not None else sys.stderr.isatty()
    return tqdm(total=total, desc=desc, unit=unit, disable=not enabled or total == 0,
                leave=False, dynamic_ncols=True, file=sys.stderr)
