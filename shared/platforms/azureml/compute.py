"""Where the fine-tune runs: serverless (an instance type) or a named cluster, checked against the model.

The checks are the seed's: a cluster must not be in a failed state; its size must be in the model's fine-tune
allow-list and not in the list of GPUs the component cannot use. GPUs per node (number_of_gpu_to_use_
finetuning) come from the size's name: the workspace's VM-size list is a subscription-scoped call
(`.../locations/{region}/vmSizes`) that AzureML Data Scientist on the workspace does not allow, so it is asked
only for a size this table does not know, and a refusal there is a clear error, not a failed submission.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.platforms.azureml.base_model import BaseModel
from shared.platforms.azureml.errors import AuthFailed, ComputeNotAllowed, azure_call
from shared.settings import AzureMLSettings

SERVERLESS = "serverless"
# K80-era sizes the fine-tune component does not support (the seed's deny-list).
UNSUPPORTED_SIZES = frozenset({"standard_nc6", "standard_nc12", "standard_nc24", "standard_nc24r"})
# GPUs per VM of Azure's GPU sizes (learn.microsoft.com/azure/virtual-machines/sizes, GPU accelerated).
GPUS_PER_NODE = {
    "standard_nc24ads_a100_v4": 1, "standard_nc48ads_a100_v4": 2, "standard_nc96ads_a100_v4": 4,
    "standard_nd96asr_v4": 8, "standard_nd96amsr_a100_v4": 8,
    "standard_nc40ads_h100_v5": 1, "standard_nc80adis_h100_v5": 2,
    "standard_nd96isr_h100_v5": 8, "standard_nd96isr_h200_v5": 8,
    "standard_nc6s_v3": 1, "standard_nc12s_v3": 2, "standard_nc24s_v3": 4, "standard_nc24rs_v3": 4,
    "standard_nd40rs_v2": 8,
    "standard_nc4as_t4_v3": 1, "standard_nc8as_t4_v3": 1, "standard_nc16as_t4_v3": 1,
    "standard_nc64as_t4_v3": 4,
    "standard_nc6s_v2": 1, "standard_nc12s_v2": 2, "standard_nc24s_v2": 4, "standard_nc24rs_v2": 4,
    "standard_nc6": 1, "standard_nc12": 2, "standard_nc24": 4, "standard_nc24r": 4,
}


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
        # The SDK gives an enum.
        state = getattr(cluster.provisioning_state, "value", cluster.provisioning_state)
        if str(state or "").lower() == "failed":
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
    """GPUs of one node of `size`: from the table, else from the region's VM-size list if readable."""
    known = GPUS_PER_NODE.get(size.lower())
    if known is not None:
        return known
    try:
        with azure_call(f"list the VM sizes of the workspace's region to find the GPUs of {size}"):
            sizes = list(ml.compute.list_sizes())
    except AuthFailed as error:
        raise ComputeNotAllowed(
            f"{where}: GPUs per node of {size} are not known here and the region's VM-size list needs "
            f"'Reader' on the subscription, which the app does not have ({error}); use a size of known GPU "
            f"count: {', '.join(sorted(GPUS_PER_NODE))}") from error
    for vm in sizes:
        if str(vm.name).lower() == size.lower():
            if not vm.gpus:
                raise ComputeNotAllowed(f"{where}: {size} has no GPU; fine-tuning needs a GPU size")
            return int(vm.gpus)
    raise ComputeNotAllowed(f"{where}: {size} is not offered in the workspace's region")
