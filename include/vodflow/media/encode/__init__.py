"""Encoding: the ladder, the ffmpeg command vocabulary, running ffmpeg, whole-video and chunked encodes."""
