"""Early playback (issue 25): a first version is watchable while it is encoded.

``tree``: a version's early tree (EVENT playlists rendered from the catalog's rows under the version's lock, the
playable flag); ``watcher``: segments as ffmpeg completes them; ``whole``: both beside a whole-video encode.
"""

from vodflow.pipeline.early.tree import AUDIO_TRACK, EarlySegment, EarlyTree, early_tracks, upload_segment
from vodflow.pipeline.early.watcher import SegmentWatcher

__all__ = ["AUDIO_TRACK", "EarlySegment", "EarlyTree", "SegmentWatcher", "early_tracks", "upload_segment"]
