"""Video files in and out: reading clips as small RGB frames, drawing them as a strip, browser previews.

capture  opening a file with OpenCV, refusing what is not a video, decoding frames within a deadline
clips    the report's choice of T frames per clip (`decode_clip`, `read_clip`) and windows of a long video
strip    a clip's frames laid out as one picture (`frame_strip`)
preview  an H.264 MP4 copy that every browser plays (`browser_video`)
"""

from har.video.capture import VIDEO_EXTENSIONS, VideoError, check_video_file
from har.video.clips import Clip, Window, decode_clip, read_clip, read_windows, sample_indices
from har.video.preview import browser_video
from har.video.strip import frame_strip

__all__ = [
    "VIDEO_EXTENSIONS",
    "Clip",
    "VideoError",
    "Window",
    "browser_video",
    "check_video_file",
    "decode_clip",
    "frame_strip",
    "read_clip",
    "read_windows",
    "sample_indices",
]
