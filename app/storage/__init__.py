"""Where artifacts live: a local folder or an S3-compatible bucket, behind one small interface."""
