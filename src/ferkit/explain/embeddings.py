"""2-D maps of what a model learned: embeddings projected with t-SNE (or UMAP).

Every ferkit model returns ``FEROutput.embedding`` (the feature a centre loss pulls
together), so one function serves all architectures.  Class centres are drawn too: the
model's learned centres when its weights hold them (a ``(K, D)`` tensor whose name
contains "center"/"centre"), else the class means of the projected points.

Example:
    >>> import ferkit
    >>> from ferkit.data import FakeFER
    >>> from ferkit.explain.embeddings import compute_embeddings, project_2d
    >>> model = ferkit.create_model("baseline_test")
    >>> emb = compute_embeddings(model, FakeFER(40, image_size=32, channels=3))
    >>> project_2d(emb.features, method="tsne", seed=0).shape
    (40, 2)
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from ferkit.atomic import atomic_open, atomic_path, make_dirs
from ferkit.config import config_of
from ferkit.data.base import FERDataset
from ferkit.errors import FerkitError
from ferkit.labels import CANONICAL
from ferkit.progress import task, track


@dataclass
class Embeddings:
    """Features of ``N`` samples.

    Attributes:
        features: ``(N, D)`` float32 ``FEROutput.embedding``.
        labels: ``(N,)`` canonical class index (the dataset's label).
        predicted: ``(N,)`` canonical index of the model's top class.
        centres: ``(K, D)`` the model's learned class centres, or ``None``.
        centre_labels: canonical index of each centre.
    """

    features: np.ndarray
    labels: np.ndarray
    predicted: np.ndarray
    centres: np.ndarray | None = None
    centre_labels: np.ndarray | None = None


@dataclass(frozen=True)
class EmbedResult:
    png: Path
    csv: Path
    num_samples: int
    method: str
    accuracy: float


def compute_embeddings(model: nn.Module, dataset: FERDataset, *, batch_size: int = 64,
                       max_samples: int | None = None, device: str = "auto",
                       seed: int = 0) -> Embeddings:
    """Run ``dataset`` (preprocessed with the model's eval transform) through ``model``."""
    from ferkit.data.transforms import eval_transform
    from ferkit.devices import resolve_device

    device = resolve_device(device)
    cfg = config_of(model, "compute_embeddings")
    dataset.transform = eval_transform(cfg.data)
    indices = np.arange(len(dataset))
    if max_samples is not None and len(dataset) > max_samples:
        indices = np.sort(np.random.default_rng(seed).choice(indices, max_samples,
                                                             replace=False))
    subset = torch.utils.data.Subset(dataset, indices.tolist())
    to_canonical = np.array([CANONICAL.index(n) for n in cfg.label_names])
    model = model.to(device).eval()
    feats, preds = [], []
    with torch.inference_mode():
        loader = DataLoader(subset, batch_size=batch_size, shuffle=False)
        for x, _ in track(loader, description="embedding (batches)"):
            out = model(x.to(device))
            if out.embedding is None:
                raise FerkitError(f"{cfg.architecture} returns no embedding to project")
            feats.append(out.embedding.float().cpu().flatten(1).numpy())
            preds.append(to_canonical[out.logits.argmax(-1).cpu().numpy()])
    if not feats:
        raise FerkitError("the dataset is empty: nothing to embed")
    features = np.concatenate(feats)
    centres = _learned_centres(model, features.shape[1], cfg.num_classes)
    return Embeddings(
        features=features, labels=dataset.targets[indices], predicted=np.concatenate(preds),
        centres=centres, centre_labels=None if centres is None else to_canonical,
    )


def project_2d(features: np.ndarray, *, method: str = "tsne", seed: int = 0) -> np.ndarray:
    """``(N, D)`` → ``(N, 2)`` with t-SNE (scikit-learn) or UMAP (``umap-learn``)."""
    if len(features) < 3:
        raise FerkitError(f"need at least 3 samples for a 2-D projection, got {len(features)}")
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = float(min(30.0, max(2.0, (len(features) - 1) / 3)))
        return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed
                    ).fit_transform(features).astype(np.float32)
    if method == "umap":
        try:
            import umap
        except ImportError as exc:
            raise FerkitError("--method umap needs umap-learn (pip install umap-learn); "
                              "or use --method tsne") from exc
        return umap.UMAP(n_components=2, random_state=seed).fit_transform(features
                                                                          ).astype(np.float32)
    raise FerkitError(f"unknown projection method {method!r}; choose tsne or umap")


def embed_checkpoint(checkpoint: str | Path, dataset: FERDataset, out_dir: str | Path, *,
                     method: str = "tsne", max_samples: int | None = 2000, seed: int = 0,
                     batch_size: int = 64) -> EmbedResult:
    """Embed ``dataset`` with a checkpoint and write ``embedding_<method>.png`` and ``.csv``.

    The CSV has one row per sample (``x, y, label, predicted``) then one per centre
    (``kind=centre``).
    """
    from ferkit.weights import load_checkpoint

    model = load_checkpoint(checkpoint)
    emb = compute_embeddings(model, dataset, max_samples=max_samples, seed=seed,
                             batch_size=batch_size)
    points = emb.features
    if emb.centres is not None:
        # Fit the centres together with the samples: t-SNE cannot place new points later.
        points = np.concatenate([points, emb.centres])
    with task(f"{method} projection of {len(points)} points"):
        xy = project_2d(points, method=method, seed=seed)
    n = len(emb.features)
    sample_xy = xy[:n]
    if emb.centres is not None:
        centre_xy, centre_labels, centre_kind = xy[n:], emb.centre_labels, "learned centre"
    else:
        centre_labels = np.unique(emb.labels)
        centre_xy = np.stack([sample_xy[emb.labels == c].mean(0) for c in centre_labels])
        centre_kind = "class mean"
    out = make_dirs(out_dir)
    csv_path = out / f"embedding_{method}.csv"
    with atomic_open(csv_path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["kind", "x", "y", "label", "predicted"])
        for (x, y), label, pred in zip(sample_xy, emb.labels, emb.predicted, strict=True):
            writer.writerow(["sample", f"{x:.4f}", f"{y:.4f}", CANONICAL[label], CANONICAL[pred]])
        for (x, y), label in zip(centre_xy, centre_labels, strict=True):
            writer.writerow([centre_kind.replace(" ", "_"), f"{x:.4f}", f"{y:.4f}",
                             CANONICAL[label], ""])
    accuracy = float((emb.labels == emb.predicted).mean())
    png_path = out / f"embedding_{method}.png"
    _plot(png_path, sample_xy, emb.labels, centre_xy, centre_labels, centre_kind,
          title=f"{model.ferkit_config.architecture}: {method.upper()} of {n} embeddings "
                f"({getattr(dataset, 'name', 'dataset')}, accuracy {accuracy:.1%})")
    return EmbedResult(png=png_path, csv=csv_path, num_samples=n, method=method,
                       accuracy=accuracy)


def _learned_centres(model: nn.Module, dim: int, num_classes: int) -> np.ndarray | None:
    for name, tensor in model.state_dict().items():
        lowered = name.lower()
        if ("center" in lowered or "centre" in lowered) and tuple(tensor.shape) == (
                num_classes, dim):
            return tensor.detach().float().cpu().numpy()
    return None


def _plot(path: Path, xy: np.ndarray, labels: np.ndarray, centre_xy: np.ndarray,
          centre_labels: np.ndarray, centre_kind: str, *, title: str) -> None:
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 7), dpi=110, layout="constrained")
    ax = fig.add_subplot()
    palette = colormaps["tab10"]
    for c in np.unique(np.concatenate([labels, centre_labels])):
        colour = palette(int(c) % 10)
        mask = labels == c
        if mask.any():
            ax.scatter(xy[mask, 0], xy[mask, 1], s=10, alpha=0.6, color=colour,
                       label=f"{CANONICAL[c]} ({int(mask.sum())})")
        sel = centre_labels == c
        if sel.any():
            ax.scatter(centre_xy[sel, 0], centre_xy[sel, 1], s=220, marker="*", color=colour,
                       edgecolors="black", linewidths=1.2)
    ax.scatter([], [], s=220, marker="*", color="white", edgecolors="black",
               label=centre_kind)
    ax.legend(loc="best", fontsize=9, markerscale=1.5, title="class (samples)")
    ax.set_title(title, fontsize=11)
    ax.set_xlabel("dimension 1")
    ax.set_ylabel("dimension 2")
    with atomic_path(path) as tmp:
        fig.savefig(tmp)
