"""Uploaded datasets: where their files live, their state, uploads and their schemas."""
