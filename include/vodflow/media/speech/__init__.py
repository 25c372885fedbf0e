"""Speech in a source's main audio track, recognised into timed words (faster-whisper), then readable cues and
transcripts. Media only: no Airflow, S3 or database."""
