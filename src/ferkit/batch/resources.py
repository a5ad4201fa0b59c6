"""How many classifier actors a batch job starts, and what each reserves.

Ray schedules by *logical* resources: a task or actor runs only where its ``num_cpus`` /
``num_gpus`` are free.  An actor pool that reserves every CPU of the cluster leaves none for
the decode-and-detect tasks that feed it, and the job waits forever (seen on a 2-CPU local
runtime: two 1-CPU actors, zero read tasks scheduled).  :func:`plan_resources` therefore
always leaves at least ``task_cpus`` free for the tasks, and refuses settings that cannot.

Detection (RetinaFace on the whole photo) costs several times more than classifying the
crops it finds (benchmarks/README_scale.md), so on CPU clusters most cores go to tasks: by
default one actor per :data:`CPUS_PER_ACTOR` CPUs.  With GPUs, one actor per GPU classifies
and the CPUs detect.

Example:
    >>> plan = plan_resources({"CPU": 2.0})
    >>> plan.actors, plan.actor_cpus, plan.task_cpus
    (1, 0.5, 1.0)
    >>> plan_resources({"CPU": 16.0, "GPU": 2.0}).actors
    2
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from ferkit.errors import FerkitError

#: CPU-only clusters: one classifier actor per this many CPUs (detection is the heavy stage).
CPUS_PER_ACTOR = 4


@dataclass(frozen=True)
class ResourcePlan:
    """Reservations of one batch job.

    Attributes:
        actors: most classifier actors (the pool starts with one and grows to this).
        actor_cpus, actor_gpus: what each actor reserves.
        task_cpus: what each decode-and-detect task reserves (and the threads it uses).
        cluster_cpus: the cluster's CPUs when the plan was made.
    """

    actors: int
    actor_cpus: float
    actor_gpus: float
    task_cpus: float
    cluster_cpus: float

    @property
    def free_for_tasks(self) -> float:
        return self.cluster_cpus - self.actors * self.actor_cpus

    def describe(self) -> str:
        gpu = f", {self.actor_gpus:g} GPU" if self.actor_gpus else ""
        return (f"{self.actors} classifier actor{'s' * (self.actors != 1)} "
                f"({self.actor_cpus:g} CPU{gpu} each), detect tasks of {self.task_cpus:g} CPU "
                f"on the other {self.free_for_tasks:g} of {self.cluster_cpus:g} CPUs")


def plan_resources(cluster: Mapping[str, float], *, actors: int | None = None,
                   actor_cpus: float | None = None, gpus_per_actor: float | None = None,
                   task_cpus: float | None = None) -> ResourcePlan:
    """A :class:`ResourcePlan` for a cluster's resources (``ray.cluster_resources()``).

    Args:
        cluster: at least ``{"CPU": n}``; ``"GPU"`` when there are GPUs.
        actors: classifier actors (default: one per GPU, else one per
            :data:`CPUS_PER_ACTOR` CPUs, at least one).
        actor_cpus: CPUs each actor reserves (default: 1, or 0.5 on clusters under 4 CPUs,
            so one detect task still fits beside the actor).
        gpus_per_actor: default 1 when the cluster has GPUs, else 0.
        task_cpus: CPUs each detect task reserves (default 1, or what is left beside one
            actor on a 1-CPU runtime).

    Raises:
        FerkitError: the actors would leave less than ``task_cpus`` for the detect tasks,
            or ask for GPUs the cluster does not have.
    """
    cpus = float(cluster.get("CPU", 0.0))
    gpus = float(cluster.get("GPU", 0.0))
    if cpus <= 0:
        raise FerkitError("the Ray cluster has no CPUs: start Ray with some (ray start "
                          "--num-cpus N)")
    if gpus_per_actor is None:
        gpus_per_actor = 1.0 if gpus >= 1 else 0.0
    if gpus_per_actor > 0 and gpus < gpus_per_actor:
        raise FerkitError(f"{gpus_per_actor:g} GPU per actor asked for, but the Ray cluster "
                          f"has {gpus:g} GPUs; drop --gpus-per-actor to classify on CPU")
    if actor_cpus is None:
        actor_cpus = 1.0 if cpus >= 4 else 0.5 if cpus >= 1.5 else cpus / 2
    if actor_cpus <= 0:
        raise FerkitError(f"--actor-cpus must be > 0, got {actor_cpus:g}")
    if task_cpus is None:
        task_cpus = min(1.0, cpus - actor_cpus) if cpus > actor_cpus else 1.0
    if task_cpus <= 0:
        raise FerkitError(f"task CPUs must be > 0, got {task_cpus:g}")
    if actors is None:
        if gpus_per_actor > 0:
            actors = max(1, math.floor(gpus / gpus_per_actor))
        else:
            actors = max(1, math.floor(cpus / CPUS_PER_ACTOR))
        # Never let the default starve the tasks.
        actors = max(1, min(actors, math.floor((cpus - task_cpus) / actor_cpus)))
    if actors < 1:
        raise FerkitError(f"--actors must be at least 1, got {actors}")
    left = cpus - actors * actor_cpus
    if left < task_cpus:
        raise FerkitError(
            f"{actors} actor{'s' * (actors != 1)} x {actor_cpus:g} CPU reserve "
            f"{actors * actor_cpus:g} of the cluster's {cpus:g} CPUs, leaving {left:g} for the "
            f"decode-and-detect tasks, which need {task_cpus:g}: the job would wait forever. "
            "Use fewer --actors or a smaller --actor-cpus"
        )
    if gpus_per_actor > 0 and actors * gpus_per_actor > gpus:
        fit = math.floor(gpus / gpus_per_actor)
        raise FerkitError(f"{actors} actors x {gpus_per_actor:g} GPU need more than the "
                          f"cluster's {gpus:g} GPUs; use --actors {fit}")
    return ResourcePlan(actors=actors, actor_cpus=float(actor_cpus),
                        actor_gpus=float(gpus_per_actor), task_cpus=float(task_cpus),
                        cluster_cpus=cpus)


def threads_for(cpus: float) -> int:
    """Compute threads for a reservation of ``cpus`` logical CPUs (at least one)."""
    return max(1, math.floor(cpus))
