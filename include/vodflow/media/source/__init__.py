"""The source: what ffprobe says about an upload (probe), its timestamps and its tracks."""
