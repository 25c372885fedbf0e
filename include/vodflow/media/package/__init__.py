"""Packaging: HLS (MPEG-TS), CMAF/fMP4 with its HLS and DASH manifests, WebVTT and download files."""
