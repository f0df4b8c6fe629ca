"""Datasets: UCF50, the built-in demo, the frame cache built from either, and train/validation/test splits."""

from har.datasets.cache import FrameCache, build_cache, cache_is_current, default_cache_path, list_caches, load_cache
from har.datasets.demo import DEMO_CLASSES, DemoData, demo_cache_path, ensure_demo, generate_demo
from har.datasets.layout import find_clips, find_root
from har.datasets.splits import Split, config_split, group_split, make_split, report_split
from har.datasets.ucf50 import UCF50_CLASSES

__all__ = [
    "DEMO_CLASSES",
    "UCF50_CLASSES",
    "DemoData",
    "FrameCache",
    "Split",
    "build_cache",
    "cache_is_current",
    "default_cache_path",
    "demo_cache_path",
    "ensure_demo",
    "find_clips",
    "find_root",
    "generate_demo",
    "group_split",
    "list_caches",
    "load_cache",
    "config_split",
    "make_split",
    "report_split",
]
