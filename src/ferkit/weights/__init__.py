"""Trained weights: the layer above the architectures (:mod:`ferkit.models`).

- :mod:`ferkit.weights.shipped`: the weights inside ferkit, named ``architecture.tag``
  (``dsan.fer2013``; ``"default"``), each with a :class:`~ferkit.config.WeightsConfig`
  (sha256, licence, dataset, recipe, metrics) checked when loaded;
- :mod:`ferkit.weights.user`: the user's models under ``$FERKIT_HOME/models``;
- :mod:`ferkit.weights.loading`: :func:`create_model`, :func:`load_checkpoint`,
  :func:`save_checkpoint` and name resolution, so every command takes a path or a name.

Example:
    >>> import ferkit
    >>> ferkit.list_models(pretrained=True)
    ['dsan.fer2013']
"""

from ferkit.weights.loading import (
    add_user_model,
    create_model,
    list_models,
    load_checkpoint,
    named_weights_dir,
    resolve_checkpoint_dir,
    save_checkpoint,
)
from ferkit.weights.shipped import (
    DEFAULT_NAME,
    WEIGHTS,
    ShippedWeights,
    find_shipped,
    list_shipped,
    publish_weights,
    read_weights_config,
    register_shipped,
    shipped_weights_dir,
    verify_weights,
    write_weights_config,
)
from ferkit.weights.user import (
    check_model_name,
    list_user_models,
    remove_user_model,
    user_model_dir,
    user_models_dir,
)

__all__ = [
    "DEFAULT_NAME",
    "WEIGHTS",
    "ShippedWeights",
    "add_user_model",
    "check_model_name",
    "create_model",
    "find_shipped",
    "list_models",
    "list_shipped",
    "list_user_models",
    "load_checkpoint",
    "named_weights_dir",
    "publish_weights",
    "read_weights_config",
    "register_shipped",
    "remove_user_model",
    "resolve_checkpoint_dir",
    "save_checkpoint",
    "shipped_weights_dir",
    "user_model_dir",
    "user_models_dir",
    "verify_weights",
    "write_weights_config",
]
