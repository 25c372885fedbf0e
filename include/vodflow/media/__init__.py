"""ffmpeg and HLS: probing, ladders, encoding, chunking, pictures, playlists. No Airflow, S3 or database."""
