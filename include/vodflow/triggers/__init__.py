"""What starts runs: the S3 watcher, presigned uploads, scheduled reprocessing."""
