"""Where the upload watcher's trigger lived before the library was split into layers (``vodflow.triggers.watch``).

A deferred ``watch_uploads`` task from an older release is stored with the classpath
``vodflow.watch.NewUploadsTrigger``; the triggerer must still find it there to resume it after an upgrade.
"""

from vodflow.triggers.watch import NewUploadsTrigger

__all__ = ["NewUploadsTrigger"]
