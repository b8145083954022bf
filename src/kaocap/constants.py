"""The project's fixed tables: blendshape names and orders, landmark subsets and indices.

Everything here is data, not logic, so that no magic integers appear elsewhere.
"""

from __future__ import annotations

#: The 52 ARKit blendshapes in Apple's order (``ARFaceAnchor.BlendShapeLocation`` as written by
#: Live Link Face), camelCase ARKit names. Every blendshape array in kaocap uses this order.
BLENDSHAPES: tuple[str, ...] = (
    "eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft",
    "eyeSquintLeft", "eyeWideLeft", "eyeBlinkRight", "eyeLookDownRight", "eyeLookInRight",
    "eyeLookOutRight", "eyeLookUpRight", "eyeSquintRight", "eyeWideRight", "jawForward",
    "jawRight", "jawLeft", "jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthRight",
    "mouthLeft", "mouthSmileLeft", "mouthSmileRight", "mouthFrownLeft", "mouthFrownRight",
    "mouthDimpleLeft", "mouthDimpleRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper", "mouthPressLeft",
    "mouthPressRight", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthUpperUpLeft",
    "mouthUpperUpRight", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft",
    "browOuterUpRight", "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "noseSneerLeft",
    "noseSneerRight", "tongueOut",
)  # fmt: skip
BLENDSHAPE_INDEX: dict[str, int] = {name: i for i, name in enumerate(BLENDSHAPES)}
#: ``values[BLENDSHAPE_MIRROR]`` are the blendshapes of the mirrored face (each ...Left shape
#: swapped with its ...Right partner, the rest in place).
BLENDSHAPE_MIRROR: tuple[int, ...] = tuple(
    BLENDSHAPE_INDEX[n.replace("Left", "#").replace("Right", "Left").replace("#", "Right")] for n in BLENDSHAPES
)

#: The output order of MediaPipe's blendshape network (``kBlendshapeNames`` in
#: mediapipe/tasks/cc/vision/face_landmarker/face_blendshapes_graph.cc): ``_neutral`` then the
#: 51 ARKit names (all but tongueOut) sorted.
MEDIAPIPE_BLENDSHAPES: tuple[str, ...] = ("_neutral",) + tuple(
    sorted(name for name in BLENDSHAPES if name != "tongueOut")
)

#: Shapes that MediaPipe's network does not produce. They are reported as 0 with
#: ``Face.blendshapes_valid`` False until a model of ours predicts them.
MEDIAPIPE_MISSING_BLENDSHAPES: tuple[str, ...] = ("tongueOut",)

#: The 146 landmarks that MediaPipe's blendshape network reads (``kLandmarksSubsetIdxs``).
BLENDSHAPE_LANDMARK_SUBSET: tuple[int, ...] = (
    0, 1, 4, 5, 6, 7, 8, 10, 13, 14, 17, 21, 33, 37, 39, 40, 46, 52, 53, 54, 55, 58, 61, 63, 65,
    66, 67, 70, 78, 80, 81, 82, 84, 87, 88, 91, 93, 95, 103, 105, 107, 109, 127, 132, 133, 136,
    144, 145, 146, 148, 149, 150, 152, 153, 154, 155, 157, 158, 159, 160, 161, 162, 163, 168, 172,
    173, 176, 178, 181, 185, 191, 195, 197, 234, 246, 249, 251, 263, 267, 269, 270, 276, 282, 283,
    284, 285, 288, 291, 293, 295, 296, 297, 300, 308, 310, 311, 312, 314, 317, 318, 321, 323, 324,
    332, 334, 336, 338, 356, 361, 362, 365, 373, 374, 375, 377, 378, 379, 380, 381, 382, 384, 385,
    386, 387, 388, 389, 390, 397, 398, 400, 402, 405, 409, 415, 454, 466, 468, 469, 470, 471, 472,
    473, 474, 475, 476, 477,
)  # fmt: skip

NUM_LANDMARKS = 478

#: Named landmarks of the 478-point mesh (subject's left/right).
LANDMARK_RIGHT_EYE_OUTER = 33
LANDMARK_LEFT_EYE_OUTER = 263
LANDMARK_RIGHT_IRIS = 468
LANDMARK_LEFT_IRIS = 473
#: The iris points' mirror partners (centre, then the ring: 469 <-> 476, 470 <-> 475,
#: 471 <-> 474, 472 <-> 477; the 468 mesh points' partners come from the canonical face,
#: kaocap.train.augment.landmark_mirror).
IRIS_MIRROR: tuple[int, ...] = (473, 476, 475, 474, 477, 468, 471, 470, 469, 472)
LANDMARK_NOSE_TIP = 1
LANDMARK_UPPER_LIP = 13
LANDMARK_LOWER_LIP = 14

#: BlazeFace keypoint order (6 keypoints per detection).
DETECTION_RIGHT_EYE = 0
DETECTION_LEFT_EYE = 1
