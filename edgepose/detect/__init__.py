"""Person detectors in front of top-down models: output formats, NMS, the detector card."""

from edgepose.detect.card import FORMATS, DetectorCard
from edgepose.detect.detector import Detections, Detector
from edgepose.detect.nms import nms

__all__ = ["FORMATS", "DetectorCard", "Detections", "Detector", "nms"]
