"""Migrate many courses: the per-course unit, the thread and Celery engines, the plan and the summary."""
