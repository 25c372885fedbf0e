"""Quality: VMAF scores, trial encodes and the per-title ladder built from them."""
