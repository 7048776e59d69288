"""Read Open edX: the contentstore's transcripts, its courses, and transcript parsing."""
