"""Data engine: labelled training sets from real video (teacher labels) and synthetic renders.

Needs the ``train`` extra for rendering (moderngl) and the MediaPipe teacher (mediapipe).
"""
