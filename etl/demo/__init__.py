"""Run the demo: a sample course in an in-process contentstore, migrated to a local S3."""
