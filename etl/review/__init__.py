"""Show what was done: the status, history and report views, manifest diffs, reports and sign-off."""
