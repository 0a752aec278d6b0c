"""Uploaded weights files: where they live, uploads, their use by jobs and their schemas."""
