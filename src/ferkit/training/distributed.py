"""Training on several GPUs and nodes: the process layout a launcher gives ``ferkit train``.

Lightning already runs DDP from ``trainer.devices`` / ``trainer.num_nodes`` /
``trainer.strategy`` and joins the process group that ``torchrun`` or SLURM set up.  What it
cannot guess is that a run started by a launcher wants the launcher's layout: with the
recipe defaults (``devices: auto``, ``num_nodes: 1``) a 2-node ``torchrun`` would have each
node train on its own.  :func:`resolve_topology` fills those two settings from the launcher's
environment and refuses explicit settings that contradict it (which would otherwise hang at
the first collective).

Example:
    >>> env = {"TORCHELASTIC_RUN_ID": "x", "WORLD_SIZE": "8", "LOCAL_WORLD_SIZE": "4"}
    >>> launcher_topology(env)
    Topology(launcher='torchrun', devices=4, num_nodes=2)
    >>> resolve_topology("auto", 1, env)
    (4, 2)
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ferkit.errors import FerkitError


@dataclass(frozen=True)
class Topology:
    """Processes per node (``devices``) and nodes, as a launcher started them."""

    launcher: str
    devices: int
    num_nodes: int


def launcher_topology(env: Mapping[str, str] | None = None) -> Topology | None:
    """The layout set by ``torchrun`` (``torch.distributed.run``) or a SLURM job step
    (``srun``), or ``None`` when ferkit was started directly."""
    env = os.environ if env is None else env
    if "TORCHELASTIC_RUN_ID" in env and "WORLD_SIZE" in env:
        world = int(env["WORLD_SIZE"])
        local = int(env.get("LOCAL_WORLD_SIZE", world))
        return Topology("torchrun", local, max(1, world // max(1, local)))
    # Lightning's SLURMEnvironment is active for batch steps, not interactive shells.
    if "SLURM_NTASKS" in env and env.get("SLURM_JOB_NAME") not in ("bash", "interactive"):
        nodes = int(env.get("SLURM_NNODES", env.get("SLURM_JOB_NUM_NODES", "1")))
        per_node = env.get("SLURM_NTASKS_PER_NODE")
        match = re.match(r"\d+", per_node or "")
        devices = int(match.group()) if match else max(1, int(env["SLURM_NTASKS"]) // nodes)
        return Topology("slurm", devices, nodes)
    return None


def resolve_topology(devices: Any, num_nodes: int,
                     env: Mapping[str, str] | None = None) -> tuple[Any, int]:
    """``(devices, num_nodes)`` for Lightning: the recipe's, completed from the launcher.

    Raises:
        FerkitError: the recipe or command line sets a layout the launcher did not start.
    """
    topology = launcher_topology(env)
    if topology is None:
        return devices, num_nodes
    if devices == "auto" or devices is None:
        devices = topology.devices
    if num_nodes in (None, 1):
        num_nodes = topology.num_nodes
    count = devices if isinstance(devices, int) else len(devices) \
        if isinstance(devices, (list, tuple)) else None
    if (count is not None and count != topology.devices) or num_nodes != topology.num_nodes:
        raise FerkitError(
            f"{topology.launcher} started {topology.devices} process(es) on each of "
            f"{topology.num_nodes} node(s), but the run asks for devices={devices}, "
            f"num_nodes={num_nodes}: drop --devices/--num-nodes (ferkit takes the launcher's "
            "layout) or launch as many processes as they say"
        )
    return devices, num_nodes
