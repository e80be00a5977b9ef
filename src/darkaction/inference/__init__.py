"""Inference on trained runs: `Recognizer` (files, frames, long videos in windows, live streams) and its outputs."""

from darkaction.inference.recognizer import Recognizer
from darkaction.inference.stream import FrameStream

__all__ = ["FrameStream", "Recognizer"]
