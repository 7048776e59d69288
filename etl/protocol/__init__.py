"""Hold a course as a transaction: its record, claim, lease, epochs, commit marker and cleanup."""
