"""AzureMLPlatform: the platform port on azure-ai-ml, the production path.

Clients are made on first use from settings (DefaultAzureCredential, or the credential given) with the same
azure-core options for all (tests pass `transport=`: the real SDKs then talk to a fake service).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core.exceptions import ResourceNotFoundError

from shared.finetune import ParameterError, display_name, resolve_parameters
from shared.platforms import chat as chat_shapes
from shared.platforms.azureml import clients, endpoints, training
from shared.platforms.azureml.activity import last_request
from shared.platforms.azureml.base_model import BaseModel, RegistryReads, inference_skus, resolve_base_model
from shared.platforms.azureml.compute import check_size, plan_compute
from shared.platforms.azureml.errors import InvalidParameters, translate
from shared.platforms.azureml.pipeline import (
    BASE_MODEL_TAG,
    build_job,
    compute_inputs,
    find_job,
    job_state,
    load_pipeline_component,
    submit_job,
)
from shared.platforms.azureml.registration import register_model
from shared.platforms.azureml.scoring import ScoringTargets, access, chat, score
from shared.platforms.port import (
    MANAGED_TAG,
    DeploymentStatus,
    EndpointAccess,
    EndpointInfo,
    JobSpec,
    JobState,
    ModelRef,
    NotFoundError,
    Provisioning,
    TrainingRecord,
    TrainingSupport,
    check_name,
)
from shared.settings import AzureMLSettings, Settings, SettingsError


class AzureMLPlatform:
    """The seed's whole flow on Azure ML: fine-tune job, MLflow model, key-auth endpoint, blue/green."""

    def __init__(self, settings: Settings, credential: Any = None,
                 client_options: Mapping[str, Any] | None = None,
                 clock: Callable[[], datetime] | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if settings.azureml is None:
            raise SettingsError("AUTOPILOT_PLATFORM=azureml needs AZUREML_SUBSCRIPTION_ID, "
                                "AZUREML_RESOURCE_GROUP and AZUREML_WORKSPACE")
        self._settings = settings
        self._aml: AzureMLSettings = settings.azureml
        self._credential = credential
        self._options = dict(client_options or {})
        self._reads = RegistryReads()
        self._ml: Any = None
        self._registry: Any = None
        self._scoring: Any = None
        self._arm: Any = None  # ARM-token client: MLflow tracking reads, a failed deployment's operation
        self._tracking_base: str | None = None  # the workspace's MLflow tracking address
        self._targets = ScoringTargets()
        self._metrics_by_region: dict[str, Any] = {}
        self._component: Any = None
        self._clock = clock or (lambda: datetime.now(UTC))
        self._sleep = sleep  # between reads of an endpoint whose traffic is being switched

    # -- clients, made on first use -------------------------------------------------------------------------

    def _cred(self) -> Any:
        if self._credential is None:
            self._credential = clients.credential()
        return self._credential

    @property
    def settings(self) -> Settings:
        return self._settings

    @property
    def ml(self) -> Any:
        if self._ml is None:
            self._ml = clients.workspace_client(self._aml, self._cred(), self._options)
        return self._ml

    @property
    def registry(self) -> Any:
        if self._registry is None:
            # The hook keeps the JSON of registry reads: azure-ai-ml's Model drops isArchived/system_metadata.
            self._registry = clients.registry_client(self._aml, self._cred(),
                                                     {**self._options, "raw_response_hook": self._reads})
        return self._registry

    def _arm_client(self) -> Any:
        if self._arm is None:
            self._arm = clients.arm_client(self._cred(), self._options)
        return self._arm

    def _metrics_for(self, region: str) -> Any:
        if region not in self._metrics_by_region:
            self._metrics_by_region[region] = clients.metrics_client(region, self._cred(), self._options)
        return self._metrics_by_region[region]

    # -- jobs -----------------------------------------------------------------------------------------------

    def submit(self, spec: JobSpec) -> JobState:
        """Start chat_completion_pipeline for the run, or return the job of that name if it exists.

        Refuses (before submitting anything) a retired base model, an unfit compute, unknown parameters.
        """
        existing = find_job(self.ml, spec.name)
        if existing is not None:
            return job_state(existing)
        model = self.base_model(spec.base_model or self._settings.base_model)
        compute = plan_compute(self.ml, self._aml, model)
        try:
            params = resolve_parameters(model.model_specific_defaults, spec.parameters)
        except ParameterError as error:
            raise InvalidParameters(f"{error} (from the run's manifest or FINETUNE_* settings)") from error
        params.update(compute_inputs(compute))
        if spec.experiment == JobSpec.experiment:  # the port default: AZUREML_EXPERIMENT decides
            spec = replace(spec, experiment=self._aml.experiment)
        if self._component is None:
            self._component = load_pipeline_component(self.registry, self._aml.pipeline_component_version)
        job = build_job(self._component, spec, model, params, display_name(params, prefix=spec.display_name))
        return job_state(submit_job(self.ml, job))

    def training_support(self) -> TrainingSupport:
        """chat_completion_pipeline (0.0.82) has no input for per-turn weights (it trains every assistant
        turn) and documents no tool-calling data format."""
        return TrainingSupport(per_turn_weights=False, tool_calling=False)

    def check_base_model(self, reference: str) -> None:
        """Registry reads only; ModelRetired / ModelNotFound (BaseModelRefused) say why and what to use."""
        self.base_model(reference or self._settings.base_model)

    def base_model(self, reference: str) -> BaseModel:
        """The registry's base model for `reference`; ModelRetired/ModelNotFound if it cannot fine-tune."""
        return resolve_base_model(self.registry, self._reads, reference, self._clock().date(),
                                  self._aml.registry)

    def job_status(self, job_name: str) -> JobState:
        job = find_job(self.ml, job_name)
        if job is None:
            raise NotFoundError(f"job {job_name} not found in workspace {self._aml.workspace}")
        return job_state(job)

    def training_record(self, job_name: str) -> TrainingRecord:
        """The fine-tune step's logged `loss` and `eval_loss` (training.py); NotFoundError for no such job."""
        if self._tracking_base is None:
            self._tracking_base = training.tracking_base(self.ml, self._aml.workspace)
        return training.training_record(self._arm_client(), self._tracking_base, job_name)

    def register(self, job_name: str, model_name: str, tags: Mapping[str, str],
                 description: str = "") -> ModelRef:
        model = register_model(self.ml, job_name, model_name, tags, description)
        return ModelRef(name=str(model.name), version=str(model.version))

    # -- endpoints ------------------------------------------------------------------------------------------

    def begin_deployment(self, model: ModelRef, endpoint: str, deployment: str,
                         tags: Mapping[str, str]) -> DeploymentStatus:
        """Start the endpoint (if missing) or else the deployment, never waiting: see the port."""
        registered = self._deployable(model, endpoint, deployment)
        endpoint_state = endpoints.begin_endpoint(self.ml, endpoint, tags)
        if endpoint_state != Provisioning.SUCCEEDED:
            # A deployment can only be requested on a Succeeded endpoint; the caller polls, then asks again.
            final_failure = endpoint_state.final
            return DeploymentStatus(endpoint, deployment, endpoint_state if final_failure else
                                    Provisioning.CREATING, model,
                                    f"endpoint {endpoint} is {endpoint_state}" if final_failure
                                    else f"waiting for endpoint {endpoint} to be created")
        existing = endpoints.find_deployment(self.ml, endpoint, deployment)
        # A Failed one (its container died, a redeploy of an unhealthy run) is updated in place to come back.
        failed = existing is not None and \
            Provisioning.parse(existing.provisioning_state) == Provisioning.FAILED
        if existing is None or failed or not _same_model(existing.model, registered.id):
            endpoints.create_deployment(self.ml, model, registered.id, endpoint, deployment,
                                        self._aml.instance_type_inference, tags, self._clock())
            return self.deployment_status(endpoint, deployment)
        return endpoints.status_of(endpoint, deployment, existing)  # nothing started: no second read

    def deployment_status(self, endpoint: str, deployment: str) -> DeploymentStatus:
        return endpoints.deployment_status(self.ml, endpoint, deployment, self._arm_client())

    def _deployable(self, model: ModelRef, endpoint: str, deployment: str) -> Any:
        """The registered model, once names and the inference size are checked."""
        check_name("endpoint", endpoint)
        check_name("deployment", deployment)
        try:
            registered = self.ml.models.get(model.name, version=model.version)
        except ResourceNotFoundError:
            raise NotFoundError(f"model {model.name}:{model.version} is not registered") from None
        except Exception as error:
            raise translate(error, f"get model {model.name}:{model.version}") from error
        base = (registered.tags or {}).get(BASE_MODEL_TAG)
        if base:
            check_size(self._aml.instance_type_inference, inference_skus(self.registry, self._reads, base),
                       f"inference instance type (setting AZUREML_INSTANCE_TYPE_INFERENCE) for {model.name}",
                       unsupported=frozenset())
        return registered

    def score(self, endpoint: str, payload: Mapping[str, Any], deployment: str | None = None) -> Any:
        if self._scoring is None:
            self._scoring = clients.scoring_client(self._options)
        return score(self.ml, self._scoring, endpoint, payload, deployment)

    def chat(self, endpoint: str, deployment: str, request: Mapping[str, Any]) -> dict[str, Any]:
        """Forwarded to the deployment pinned by `azureml-model-deployment`, with the endpoint key this
        identity lists once (AzureML Data Scientist allows listKeys)."""
        if self._scoring is None:
            self._scoring = clients.scoring_client(self._options)
        return chat(self.ml, self._scoring, self._targets, endpoint, deployment, request)

    def chat_stream(self, endpoint: str, deployment: str, request: Mapping[str, Any]) -> Iterator[str]:
        """An MLflow deployment does not stream: its whole answer, as one chunk of a stream."""
        return chat_shapes.stream_of(self.chat(endpoint, deployment, request))

    def set_traffic(self, endpoint: str, traffic: Mapping[str, int]) -> None:
        endpoints.set_traffic(self.ml, endpoint, traffic, self._sleep)

    def delete_deployment(self, endpoint: str, deployment: str) -> None:
        endpoints.delete_deployment(self.ml, endpoint, deployment)

    def delete_endpoint(self, endpoint: str) -> None:
        endpoints.delete_endpoint(self.ml, endpoint)

    def get_endpoint(self, endpoint: str) -> EndpointInfo | None:
        entity = endpoints.existing_endpoint(self.ml, endpoint)
        # One being deleted counts as gone: deletes are begun, not awaited.
        return None if entity is None or not endpoints.present(entity) else \
            endpoints.endpoint_info(self.ml, entity)

    def list_endpoints(self) -> list[EndpointInfo]:
        try:
            found = list(self.ml.online_endpoints.list())
        except Exception as error:
            raise translate(error, "list endpoints") from error
        # Deployments are listed only for our endpoints: the sweep never looks at anyone else's.
        return [endpoints.endpoint_info(self.ml, e, with_deployments=MANAGED_TAG in (e.tags or {}))
                for e in found if endpoints.present(e)]

    def endpoint_access(self, endpoint: str) -> EndpointAccess:
        """The endpoint's scoring URI and primary key (get + listKeys); an MLflow deployment serves no /v1."""
        return access(self.ml, endpoint, self._aml)

    def endpoint_activity(self, endpoint: str) -> datetime | None:
        """Last scored request within twice the idle TTL (at least an hour); None if none in that window."""
        entity = endpoints.existing_endpoint(self.ml, endpoint)
        if entity is None:
            raise NotFoundError(f"endpoint {endpoint} not found")
        ttl = self._settings.idle_ttl
        created = endpoints.endpoint_info(self.ml, entity, with_deployments=False).created_at
        return last_request(self._metrics_for, entity, self._clock(), max(ttl * 2, timedelta(hours=1)),
                            created, ttl)


def _same_model(deployed: Any, registered_id: str | None) -> bool:
    return bool(registered_id) and str(deployed or "").lower() == str(registered_id).lower()
