"""Inference: backends and (soon) the Recognizer."""
