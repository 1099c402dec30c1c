"""Where the fine-tune runs: serverless (an instance type) or a named cluster, checked against the model.

The checks are the seed's: a cluster must not be in a failed state; its size must be in the model's fine-tune
allow-list and not in the list of GPUs the component cannot use; the GPUs per node come from the workspace's
list of VM sizes and are passed to the component as number_of_gpu_to_use_finetuning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.platforms.azureml.base_model import BaseModel
from shared.platforms.azureml.errors import ComputeNotAllowed, azure_call
from shared.settings import AzureMLSettings

SERVERLESS = "serverless"
# K80-era sizes the fine-tune component does not support (the seed's deny-list).
UNSUPPORTED_SIZES = frozenset({"standard_nc6", "standard_nc12", "standard_nc24", "standard_nc24r"})


@dataclass(frozen=True)
class FinetuneCompute:
    """The compute inputs of the pipeline: a cluster name or 'serverless', its VM size and GPUs per node."""

    compute: str
    instance_type: str
    gpus_per_node: int

    @property
    def serverless(self) -> bool:
        return self.compute == SERVERLESS


def plan_compute(ml: Any, settings: AzureMLSettings, model: BaseModel) -> FinetuneCompute:
    """Check the configured compute against the model and the workspace; raise ComputeNotAllowed if unfit."""
    if settings.compute == SERVERLESS:
        size = settings.instance_type_finetune
        where = f"serverless instance type {size} (setting AZUREML_INSTANCE_TYPE_FINETUNE)"
    else:
        with azure_call(f"look up compute cluster {settings.compute} (setting AZUREML_COMPUTE)"):
            cluster = ml.compute.get(settings.compute)
        if str(cluster.provisioning_state or "").lower() == "failed":
            raise ComputeNotAllowed(f"compute cluster {settings.compute} is in a failed state; recreate "
                                    "it or set AZUREML_COMPUTE to another cluster (or 'serverless')")
        size = cluster.size
        where = f"compute cluster {settings.compute} (size {size}, setting AZUREML_COMPUTE)"
    check_size(size, model.finetune_skus, f"{where} for fine-tuning {model.name}")
    return FinetuneCompute(settings.compute, size, gpus_per_node(ml, size, where))


def check_size(size: str, allowed: tuple[str, ...] | None, what: str,
               unsupported: frozenset[str] = UNSUPPORTED_SIZES) -> None:
    """Refuse a VM size outside the model's allow-list or in the unsupported list (case-insensitive)."""
    if size.lower() in unsupported:
        raise ComputeNotAllowed(f"{what}: {size} is not supported for fine-tuning; use a size from the "
                                f"model's allow-list{': ' + ', '.join(allowed) if allowed else ''}")
    if allowed is not None and size.lower() not in {s.lower() for s in allowed}:
        raise ComputeNotAllowed(f"{what}: {size} is not in the model's allow-list; "
                                f"use one of {', '.join(allowed)}")


def gpus_per_node(ml: Any, size: str, where: str) -> int:
    """GPUs of one node of `size`, from the workspace's list of VM sizes."""
    with azure_call("list the workspace's VM sizes"):
        sizes = list(ml.compute.list_sizes())
    for vm in sizes:
        if str(vm.name).lower() == size.lower():
            if not vm.gpus:
                raise ComputeNotAllowed(f"{where}: {size} has no GPU; fine-tuning needs a GPU size")
            return int(vm.gpus)
    gpu_sizes = sorted(str(vm.name) for vm in sizes if vm.gpus)
    raise ComputeNotAllowed(f"{where}: {size} is not offered in the workspace's region; GPU sizes there: "
                            f"{', '.join(gpu_sizes) or 'none'}")
