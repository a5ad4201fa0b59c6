"""fer imports ``load_model`` at module level; the TFLite path never calls it."""


def load_model(*args, **kwargs):
    raise ImportError("keras is not installed here; construct fer.FER(use_tflite=True)")
