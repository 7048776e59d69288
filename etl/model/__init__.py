"""Describe what every layer uses: errors, the Config, keys, logs, redaction, progress and the manifest format."""
