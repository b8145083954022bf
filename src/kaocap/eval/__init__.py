"""Evaluation: agreement with the MediaPipe peer, accuracy against labels."""
