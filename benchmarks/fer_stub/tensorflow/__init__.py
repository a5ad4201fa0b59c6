"""Stand-in for ``tensorflow`` so the ``fer`` package runs on ai-edge-litert (benchmark only).

fer 25.10.3 needs only ``tf.lite.Interpreter`` when called with ``use_tflite=True``.
"""

from types import SimpleNamespace

from ai_edge_litert.interpreter import Interpreter

lite = SimpleNamespace(Interpreter=Interpreter)
