"""Synthetic people: a COCO keypoints dataset this project can make without downloads.

Every precision decision (FP16, INT8, calibration) is judged by accuracy, and no
public dataset can be fetched here, so this module draws its own: multi-person
images of articulated figures on cluttered backgrounds, with COCO-17 keypoints,
visibility flags, boxes and areas, written as a COCO ``person_keypoints`` file
that pycocotools reads. numpy and OpenCV only; deterministic from a seed.

Shapes: N people, K keypoints (17 for COCO-17, 18 for the OpenPose COCO-18
layout). Keypoints are (x, y) in pixels of the image, pixel centers at integer
coordinates (OpenCV's drawing convention), with a COCO visibility flag v:
2 visible, 1 labelled but covered by another person or an occluder drawn on top,
0 not labelled (outside the image, or a far eye/ear hidden behind the turned
head) and then x = y = 0.

How a figure is built, so that a small top-down network can learn it:

- A 2-D pose model: pelvis, torso (lean, yaw foreshortening), head on a neck,
  arms and legs as hinged chains with joint-angle limits (elbows and knees bend
  one way) and random foreshortening. Every figure faces the camera (head yaw up
  to about 70 degrees), so the person's left is on the image's right.
- Left and right are told apart by colour: the person's left sleeve and trouser
  leg are always a warm hue (red, orange, yellow, magenta), the right ones
  always a cool hue (green, cyan, blue). The torso is a duller colour. Without
  this cue crossed arms or legs make left and right ambiguous.
- The head has hair at the back and a face (eyes, nose, mouth, ears) that moves
  with the head's yaw; a far eye or ear turned behind the head is not drawn and
  not labelled.

Annotations (see `PersonAnnotation`): the box is the tight box around the
person's whole rendered silhouette (including parts later covered by others)
clipped to the image, so it encloses every labelled keypoint; ``area`` is that
silhouette's pixel count. A person with fewer than
``SyntheticConfig.min_visible_keypoints`` visible keypoints or a silhouette
smaller than ``min_area`` is kept with all keypoints zeroed and
``num_keypoints`` 0: COCOeval ignores such people (and does not count a
detection on one as a false positive), and top-down training loaders skip them.
"""

from export.training.synthetic.config import (ANNOTATION_FILE, COCO18_FROM_COCO17, IMAGE_FORMATS,
                                              LAYOUTS, PersonAnnotation, SyntheticConfig,
                                              to_coco18)
from export.training.synthetic.dataset import coco_category, main, write_coco_dataset
from export.training.synthetic.render import render_image

__all__ = ["ANNOTATION_FILE", "COCO18_FROM_COCO17", "IMAGE_FORMATS", "LAYOUTS", "PersonAnnotation",
           "SyntheticConfig", "coco_category", "main", "render_image", "to_coco18",
           "write_coco_dataset"]
