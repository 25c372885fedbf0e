"""ffmpeg and HLS, by concept: source/, encode/, package/, quality/, pictures/ (plus the leaves they share).
No Airflow, S3 or database."""
