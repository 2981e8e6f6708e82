"""faceedit: facial expression editing with a face parser and a hierarchical GAN trained as one model."""

import os

# OpenCV's and FFmpeg's own logging (a damaged video's "moov atom not found", "[ WARN ...]
# Failed to write frame") would print before faceedit's one-line message that says the same in
# words; they read these before their first use. Set either variable to see them again.
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET

__version__ = "0.1.0"
