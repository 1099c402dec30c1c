"""One contract, every implementation: what the lifecycle relies on from the platform port, held against each.

`local` is the embedded engine on a fresh data dir with Azurite: its one job really fine-tunes the tiny model
and its deployment is a real server process. `azureml` is AzureMLPlatform with the real azure-ai-ml and
MetricsClient over the wire-level fake of tests/fakes/wire (Azure's REST examples, LROs that poll, RBAC at the
door). `memory` is the in-memory platform the rule tests run on (shared/platforms/memory.py): a fake
is only as good as its promise to behave like the real thing, so it is held to the same contract.
Deployments take time everywhere (a server loading its model; the fakes' provisioning): `begin_deployment`
returns at once and `deployment_status` is polled until it is final, as the steps do.
Each implementation gets one job, one model and one endpoint for the module (module-scoped fixtures, since
a real job and a model load cost seconds). Tests run in any order: each test that needs the endpoint gets it
through `deployed`, which first brings back what an earlier test changed (traffic moved, the server killed,
the endpoint deleted).
"""

from __future__ import annotations

import json
import math
import os
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from azure.core import PipelineClient
from azure.core.rest import HttpRequest

from devhost.azurite import Azurite
from shared.lifecycle.gate import reply_text, seed_payload
from shared.platforms.local import LocalPlatform
from shared.platforms.local.endpoint_files import EndpointFiles, read_state
from shared.platforms.memory import InMemoryPlatform
from shared.platforms.port import (
    HASH_TAG,
    MANAGED_TAG,
    RUN_TAG,
    ActivityUnavailable,
    BaseModelRefused,
    DeploymentStatus,
    EndpointAccess,
    EndpointInfo,
    JobSpec,
    JobState,
    ModelRef,
    NotFoundError,
    Platform,
    PlatformError,
    Provisioning,
    RequestRefused,
    TrainingSupport,
)
from shared.settings import Settings
from shared.storage import blob_service
from tests.fakes.azureml_world import World, build_world

SAMPLE = Path(__file__).resolve().parents[2] / "demo" / "sample_chat.jsonl"
ENDPOINT = "ep-contract"
MODEL = "ft-contract-chats"
TAGS = {MANAGED_TAG: "true", RUN_TAG: "run-contract"}
CONVERSATION = [{"role": "user", "content": "What is a good backup rule?"}]


class Adapter:
    """One adapter under test, with what only its own world can tell (how many jobs really started...)."""

    kind: str
    platform: Platform
    spec: JobSpec
    refused_model: str  # a base model this platform cannot fine-tune
    # What its fine-tune honours of the chat format: the local engine labels learned turns and renders tools
    # itself; chat_completion_pipeline has no input for either. The in-memory fake stands in for the local.
    honours = TrainingSupport(per_turn_weights=True, tool_calling=True)
    # The local request log is written as each request is served; Azure Monitor's RequestsPerMinute arrives
    # minutes late, so right after a score an endpoint younger than IDLE_TTL has no known activity yet.
    activity_after_score = True
    # The endpoint answers HTTP at its scoring URI (the in-memory platform has no data plane: its key opens
    # nothing, so only its shape and stability are held to the contract).
    data_plane = True

    def finish(self, job: str) -> JobState:
        """Bring the job to a terminal status (the platform's own doing) and return it."""
        raise NotImplementedError

    def jobs_started(self) -> int:
        raise NotImplementedError

    def call_directly(self, access: EndpointAccess, key: str, deployment: str) -> int:
        """The HTTP status a user's own client gets for the seed payload POSTed straight to the scoring URI
        with `key` (not through the adapter), routed to `deployment` by Azure ML's header."""
        raise NotImplementedError

    def deployment_marker(self, endpoint: str, deployment: str) -> Any:
        """Something that changes whenever the deployment is created (again)."""
        raise NotImplementedError

    def kill(self, endpoint: str, deployment: str) -> None:
        """The deployment's serving process dies (kill -9, a crashed container)."""
        raise NotImplementedError

    def close(self) -> None:
        """Leave nothing running."""

    def let_time_pass(self) -> None:
        """Wait a little between two polls of a deployment (real time, or the fake's clock)."""
        time.sleep(0.25)


class LocalAdapter(Adapter):
    kind = "local"
    refused_model = "/no/such/model-dir"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.local = LocalPlatform(settings)
        self.platform = self.local
        # The tiny model's own fine-tune defaults (20 epochs, ~7 s): one epoch leaves it answering blanks.
        self.spec = job_spec(stage(settings), "tiny-random", parameters={})

    def finish(self, job: str) -> JobState:
        deadline = time.monotonic() + 180
        while not (state := self.platform.job_status(job)).terminal:
            assert time.monotonic() < deadline, f"local job {job} did not finish; see its job.log"
            time.sleep(0.25)
        return state

    def jobs_started(self) -> int:
        return sum(1 for _ in (self.settings.data_dir / "jobs").iterdir())

    def call_directly(self, access: EndpointAccess, key: str, deployment: str) -> int:
        headers = {"Authorization": f"Bearer {key}", "azureml-model-deployment": deployment}
        payload = seed_payload(CONVERSATION, 4, greedy=True)
        return httpx.post(access.scoring_uri, json=payload, headers=headers, timeout=120).status_code

    def deployment_marker(self, endpoint: str, deployment: str) -> Any:
        state = read_state(EndpointFiles(self.settings.data_dir / "endpoints" / endpoint))
        entry = state.deployments[deployment] if state else None
        return (entry.pid, entry.created_at) if entry else None

    def kill(self, endpoint: str, deployment: str) -> None:
        state = read_state(EndpointFiles(self.settings.data_dir / "endpoints" / endpoint))
        entry = state.deployments[deployment] if state else None
        # The job's LoRA fine-tune is served as an adapter in its base model's shared process (a pool): the
        # process this kills is the one every fine-tune of that base shares.
        assert entry is not None and entry.pid is not None and entry.pool, entry
        os.kill(entry.pid, signal.SIGKILL)
        pid = entry.pid
        deadline = time.monotonic() + 10
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)  # reaped by the adapter's own poll (its child), or by init

    def close(self) -> None:
        self.local.stop_all()


class MemoryAdapter(Adapter):
    kind = "memory"
    data_plane = False
    refused_model = "Phi-3-mini-4k-instruct"

    def __init__(self) -> None:
        self.now = datetime(2026, 9, 1, 12, 0, tzinfo=UTC)
        self.memory = InMemoryPlatform(clock=lambda: self.now, provisioning_time=timedelta(minutes=2))
        self.platform = self.memory
        self.memory.refused_models[self.refused_model] = "archived; set BASE_MODEL to a current model"
        self.spec = job_spec(("memory://staged/contract/train.jsonl", "memory://staged/contract/test.jsonl"))

    def finish(self, job: str) -> JobState:
        self.memory.finish(job)  # the fake's stand-in for the job running to its end
        return self.platform.job_status(job)

    def jobs_started(self) -> int:
        return self.memory.effects["submit"]

    def deployment_marker(self, endpoint: str, deployment: str) -> Any:
        return self.memory.deployments_made[(endpoint, deployment)]

    def let_time_pass(self) -> None:
        self.now += timedelta(seconds=30)

    def kill(self, endpoint: str, deployment: str) -> None:
        self.memory.kill(endpoint, deployment)


class AzureMLAdapter(Adapter):
    kind = "azureml"
    refused_model = "Phi-3-mini-4k-instruct"  # archived in the registry (azureml-assets' own spec)
    honours = TrainingSupport(per_turn_weights=False, tool_calling=False)
    activity_after_score = False

    def __init__(self, world: World, spec: JobSpec) -> None:
        self.world = world
        self.platform = world.platform
        self.spec = spec

    def let_time_pass(self) -> None:
        """The service works between requests (the wire fake's operations advance on each read)."""

    def kill(self, endpoint: str, deployment: str) -> None:
        self.world.wire.endpoints.kill(endpoint, deployment)

    def finish(self, job: str) -> JobState:
        # What Azure ML does while the pipeline runs: its fine-tune step logs the losses; then it ends.
        self.world.wire.tracking.log_training(job, [2.41, 2.02, 1.83, 1.66, 1.61], [1.92, 1.74])
        self.world.wire.workspace.finish_job(job, "Completed")
        return self.platform.job_status(job)

    def jobs_started(self) -> int:
        return len(self.world.wire.workspace.jobs)

    def call_directly(self, access: EndpointAccess, key: str, deployment: str) -> int:
        client = PipelineClient("https://inference.ml.azure.com", transport=self.world.wire.transport)
        headers = {"Authorization": f"Bearer {key}", "azureml-model-deployment": deployment}
        request = HttpRequest("POST", access.scoring_uri, json=seed_payload(CONVERSATION, 4, greedy=True),
                              headers=headers)
        return int(client.send_request(request).status_code)

    def deployment_marker(self, endpoint: str, deployment: str) -> Any:
        return self.world.wire.endpoints.created_deployments.count((endpoint, deployment))

    def close(self) -> None:
        # Every request the adapter made in the whole contract was within the roles infra/ grants.
        assert self.world.wire.transport.denied == [], self.world.wire.transport.denied


def stage(settings: Settings) -> tuple[str, str]:
    """The sample staged as the lifecycle stages it: train and test JSONL blobs; their URLs."""
    lines = SAMPLE.read_bytes().splitlines()
    container = blob_service(settings.storage).get_container_client(settings.staged_container)
    if not container.exists():
        container.create_container()
    urls = []
    for name, part in (("train.jsonl", lines[4:]), ("test.jsonl", lines[:4])):
        blob = container.get_blob_client(f"contract/{name}")
        blob.upload_blob(b"\n".join(part) + b"\n", overwrite=True)
        urls.append(str(blob.url))
    return urls[0], urls[1]


def job_spec(uris: tuple[str, str], base_model: str = "",
             parameters: dict[str, str] | None = None) -> JobSpec:
    """The module's job; "" is the adapter's default base model (the local one asks for the tiny one)."""
    return JobSpec(name="ftap-run-contract", run_id="run-contract", display_name=MODEL, base_model=base_model,
                   train_uri=uris[0], test_uri=uris[1],
                   parameters={"num_train_epochs": "1"} if parameters is None else parameters,
                   tags={RUN_TAG: "run-contract", HASH_TAG: "0" * 64})


@pytest.fixture(scope="module", params=["local", "azureml", "memory"])
def adapter(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Adapter]:
    if request.param == "memory":
        yield MemoryAdapter()
        return
    azurite: Azurite = request.getfixturevalue("azurite")
    env = {"AUTOPILOT_STORAGE": azurite.connection_string, "STAGED_CONTAINER": "stcontract",
           "JOB_EVENT_QUEUE": "evcontract", "AUTOPILOT_DATA_DIR": str(tmp_path_factory.mktemp("contract"))}
    chosen: Adapter
    if request.param == "local":
        request.getfixturevalue("new_data_dir")(Path(env["AUTOPILOT_DATA_DIR"]))
        chosen = LocalAdapter(Settings.from_env(env))
    else:
        world = build_world(**env)
        chosen = AzureMLAdapter(world, job_spec(stage(world.settings)))
    yield chosen
    chosen.close()


@pytest.fixture(scope="module")
def submitted(adapter: Adapter) -> tuple[JobState, Exception | None]:
    """The module's one job, and what registering its model right after submit raised.

    The early register is tried here, not in a test, because the local job finishes on its own in seconds.
    """
    state = adapter.platform.submit(adapter.spec)
    try:
        adapter.platform.register(state.name, MODEL, TAGS)
    except Exception as error:  # kept for the test to judge
        return state, error
    return state, None


@pytest.fixture(scope="module")
def finished(adapter: Adapter, submitted: tuple[JobState, Exception | None]) -> JobState:
    return adapter.finish(submitted[0].name)


@pytest.fixture(scope="module")
def model(adapter: Adapter, finished: JobState) -> ModelRef:
    return adapter.platform.register(finished.name, MODEL, TAGS, "contract test")


def provisioned(adapter: Adapter, model: ModelRef, endpoint: str, deployment: str) -> list[DeploymentStatus]:
    """Begin the deployment and poll it until it is final, beginning it again while it is not there yet (its
    endpoint was still being created), as the deploy and poll steps do; every status seen, in order."""
    seen = [adapter.platform.begin_deployment(model, endpoint, deployment, TAGS)]
    for _ in range(720):
        if seen[-1].final:
            return seen
        adapter.let_time_pass()
        try:
            seen.append(adapter.platform.deployment_status(endpoint, deployment))
        except NotFoundError:
            seen.append(adapter.platform.begin_deployment(model, endpoint, deployment, TAGS))
    raise AssertionError(f"{endpoint}/{deployment} never reached a final state: {seen[-3:]}")


@pytest.fixture(scope="module")
def polled(adapter: Adapter, model: ModelRef) -> list[DeploymentStatus]:
    return provisioned(adapter, model, ENDPOINT, "blue")


@pytest.fixture(scope="module")
def first_deployed(adapter: Adapter, polled: list[DeploymentStatus]) -> EndpointInfo:
    """The endpoint as the module's first deployment left it."""
    info = adapter.platform.get_endpoint(ENDPOINT)
    assert info is not None
    return info


@pytest.fixture
def deployed(adapter: Adapter, model: ModelRef, first_deployed: EndpointInfo) -> EndpointInfo:
    """The endpoint with `blue` Succeeded and no traffic, as deploying left it: whatever an earlier test did
    to it (moved its traffic, killed its server, deleted it) is undone first."""
    info = adapter.platform.get_endpoint(ENDPOINT)
    if info is None or info.deployments != ("blue",) \
            or not adapter.platform.deployment_status(ENDPOINT, "blue").succeeded:
        assert provisioned(adapter, model, ENDPOINT, "blue")[-1].succeeded
        info = adapter.platform.get_endpoint(ENDPOINT)
    assert info is not None
    if sum(info.traffic.values()):
        adapter.platform.set_traffic(ENDPOINT, {"blue": 0})
        info = adapter.platform.get_endpoint(ENDPOINT)
        assert info is not None and sum(info.traffic.values()) == 0
    return info


def test_a_base_model_it_cannot_fine_tune_is_refused_saying_what_to_set(adapter: Adapter) -> None:
    adapter.platform.check_base_model(adapter.spec.base_model)  # the module's own base model may be trained
    with pytest.raises(BaseModelRefused, match="BASE_MODEL"):
        adapter.platform.check_base_model(adapter.refused_model)


def test_it_says_what_its_fine_tune_honours_of_the_chat_format(adapter: Adapter) -> None:
    assert adapter.platform.training_support() == adapter.honours


def test_submitting_the_same_job_name_twice_makes_one_job(
        adapter: Adapter, submitted: tuple[JobState, Exception | None]) -> None:
    again = adapter.platform.submit(adapter.spec)
    assert again.name == submitted[0].name == adapter.spec.name
    assert adapter.jobs_started() == 1


def test_status_of_an_unknown_job_is_not_found(adapter: Adapter) -> None:
    with pytest.raises(NotFoundError):
        adapter.platform.job_status("ftap-run-nosuchjob")


def test_registering_before_the_job_completes_is_refused(
        submitted: tuple[JobState, Exception | None]) -> None:
    error = submitted[1]
    assert isinstance(error, PlatformError) and not isinstance(error, NotFoundError), error
    assert "Completed" in str(error) or "completed" in str(error)


def test_registering_the_model_of_an_unknown_job_is_not_found(adapter: Adapter) -> None:
    with pytest.raises(NotFoundError):
        adapter.platform.register("ftap-run-nosuchjob", MODEL, TAGS)


def test_the_job_reaches_a_terminal_status(adapter: Adapter, finished: JobState) -> None:
    assert finished.terminal and finished.status == "Completed", finished.error
    assert adapter.platform.job_status(finished.name).status == "Completed"


def test_registering_twice_returns_the_same_model(
        adapter: Adapter, finished: JobState, model: ModelRef) -> None:
    assert adapter.platform.register(finished.name, MODEL, TAGS, "contract test") == model


def test_deploying_an_unregistered_model_is_not_found(adapter: Adapter) -> None:
    with pytest.raises(NotFoundError):
        adapter.platform.begin_deployment(ModelRef(MODEL, "999"), "ep-contract-none", "blue", TAGS)
    assert adapter.platform.get_endpoint("ep-contract-none") is None


def test_a_deployment_is_creating_then_succeeded_and_only_then_serves(
        adapter: Adapter, model: ModelRef, polled: list[DeploymentStatus], deployed: EndpointInfo) -> None:
    assert [s.provisioning for s in polled][-1] == Provisioning.SUCCEEDED, polled[-1].error
    if adapter.kind != "local":  # the fakes take their time (a clock; the service's work): Creating first
        assert {s.provisioning for s in polled[:-1]} == {Provisioning.CREATING} and len(polled) >= 2
    assert polled[-1].model in (model, None)
    assert adapter.platform.deployment_status(ENDPOINT, "blue").succeeded


def test_the_status_of_a_missing_deployment_is_not_found(adapter: Adapter, deployed: EndpointInfo) -> None:
    with pytest.raises(NotFoundError):
        adapter.platform.deployment_status(ENDPOINT, "green")
    with pytest.raises(NotFoundError):
        adapter.platform.deployment_status("ep-contract-none", "blue")


def test_deploy_makes_a_managed_endpoint_with_the_deployment_at_zero(first_deployed: EndpointInfo) -> None:
    assert first_deployed.name == ENDPOINT and first_deployed.deployments == ("blue",)
    assert first_deployed.tags[MANAGED_TAG] == "true" and first_deployed.tags[RUN_TAG] == "run-contract"
    # Azure ML leaves a 0 % deployment out of the traffic map; the local engine lists it at 0.
    assert first_deployed.traffic.get("blue", 0) == 0 and sum(first_deployed.traffic.values()) == 0
    assert isinstance(first_deployed.created_at, datetime) \
        and isinstance(first_deployed.last_deployed_at, datetime)


def test_deploying_the_same_names_again_makes_no_second_deployment(
        adapter: Adapter, model: ModelRef, deployed: EndpointInfo) -> None:
    before = adapter.deployment_marker(ENDPOINT, "blue")
    again = adapter.platform.begin_deployment(model, ENDPOINT, "blue", TAGS)
    assert again.succeeded and adapter.deployment_marker(ENDPOINT, "blue") == before
    info = adapter.platform.get_endpoint(ENDPOINT)
    assert info is not None and info.deployments == ("blue",)


def test_a_deployment_answers_the_seed_payload_by_name(adapter: Adapter, deployed: EndpointInfo) -> None:
    answer = adapter.platform.score(ENDPOINT, seed_payload(CONVERSATION, 8, greedy=True), deployment="blue")
    assert reply_text(answer).strip(), answer


def test_a_deployment_answers_openai_chat_by_name_whole_and_streamed(
        adapter: Adapter, deployed: EndpointInfo) -> None:
    """What the front door forwards: a chat.completion, and a stream of chunks ending in [DONE]."""
    request = {"model": "contract", "messages": CONVERSATION, "max_tokens": 8, "temperature": 0}
    whole = adapter.platform.chat(ENDPOINT, "blue", request)
    assert whole["object"] == "chat.completion" and whole["choices"][0]["message"]["role"] == "assistant"
    assert whole["choices"][0]["message"]["content"].strip(), whole
    events = list(adapter.platform.chat_stream(ENDPOINT, "blue", request))
    chunks = [json.loads(e.removeprefix("data: ")) for e in events[:-1]]
    assert events[-1] == "data: [DONE]\n\n" and all(e.endswith("\n\n") for e in events)
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]).strip()
    with pytest.raises(NotFoundError):  # an asleep model: the front door wakes it
        adapter.platform.chat(ENDPOINT, "green", request)
    with pytest.raises(RequestRefused):
        adapter.platform.chat(ENDPOINT, "blue", {"model": "contract", "messages": []})


def test_traffic_to_a_missing_deployment_is_refused(adapter: Adapter, deployed: EndpointInfo) -> None:
    with pytest.raises(PlatformError):
        adapter.platform.set_traffic(ENDPOINT, {"green": 100})
    info = adapter.platform.get_endpoint(ENDPOINT)
    assert info is not None and sum(info.traffic.values()) == 0


def test_traffic_on_a_missing_endpoint_is_not_found(adapter: Adapter) -> None:
    with pytest.raises(NotFoundError):
        adapter.platform.set_traffic("ep-contract-none", {"blue": 100})
    assert adapter.platform.get_endpoint("ep-contract-none") is None


def test_deleting_a_missing_deployment_is_fine(adapter: Adapter, deployed: EndpointInfo) -> None:
    adapter.platform.delete_deployment(ENDPOINT, "green")
    adapter.platform.delete_deployment("ep-contract-none", "green")
    info = adapter.platform.get_endpoint(ENDPOINT)
    assert info is not None and info.deployments == ("blue",)


def test_with_all_traffic_the_endpoint_answers_and_keeps_its_deployment(
        adapter: Adapter, deployed: EndpointInfo) -> None:
    adapter.platform.set_traffic(ENDPOINT, {"blue": 100})
    info = adapter.platform.get_endpoint(ENDPOINT)
    assert info is not None and info.traffic == {"blue": 100} and info.scoring_uri
    assert reply_text(adapter.platform.score(ENDPOINT, seed_payload(CONVERSATION, 8, greedy=True))).strip()
    with pytest.raises(PlatformError, match="traffic"):  # both refuse to delete a deployment that serves
        adapter.platform.delete_deployment(ENDPOINT, "blue")


def test_a_killed_deployment_reads_failed_answers_nothing_and_comes_back_when_begun_again(
        adapter: Adapter, model: ModelRef, deployed: EndpointInfo) -> None:
    """What the sweep's health check and `redeploy` rely on: a dead deployment is not reported Succeeded
    (nor still Creating), is not scored, and beginning it again (same model, same name) starts it anew."""
    adapter.platform.set_traffic(ENDPOINT, {"blue": 100})  # a live deployment dies
    adapter.kill(ENDPOINT, "blue")
    dead = adapter.platform.deployment_status(ENDPOINT, "blue")
    assert dead.final and not dead.succeeded, dead
    with pytest.raises(PlatformError):
        adapter.platform.score(ENDPOINT, seed_payload(CONVERSATION, 8, greedy=True))
    info = adapter.platform.get_endpoint(ENDPOINT)
    assert info is not None and info.deployments == ("blue",) and info.traffic.get("blue") == 100
    again = provisioned(adapter, model, ENDPOINT, "blue")
    assert again[-1].succeeded, again[-1].error
    assert reply_text(adapter.platform.score(ENDPOINT, seed_payload(CONVERSATION, 8, greedy=True))).strip()


def test_a_missing_endpoint_is_none(adapter: Adapter) -> None:
    assert adapter.platform.get_endpoint("ep-contract-none") is None
    with pytest.raises(NotFoundError):  # the sweep skips an endpoint deleted since it was listed
        adapter.platform.endpoint_activity("ep-contract-none")


def test_list_endpoints_includes_ours_with_its_tags(adapter: Adapter, deployed: EndpointInfo) -> None:
    ours = [e for e in adapter.platform.list_endpoints() if e.name == ENDPOINT]
    assert len(ours) == 1 and ours[0].tags[MANAGED_TAG] == "true" and ours[0].deployments == ("blue",)


def test_endpoint_activity_after_a_score_is_its_time_or_unknown_yet(
        adapter: Adapter, deployed: EndpointInfo) -> None:
    assert reply_text(adapter.platform.score(ENDPOINT, seed_payload(CONVERSATION, 8, greedy=True),
                                             deployment="blue")).strip()
    if adapter.activity_after_score:
        last = adapter.platform.endpoint_activity(ENDPOINT)
        assert isinstance(last, datetime) and last.tzinfo is not None
    else:  # no metric yet on a young endpoint: unknown (kept by the sweep), not idle
        with pytest.raises(ActivityUnavailable, match="IDLE_TTL"):
            adapter.platform.endpoint_activity(ENDPOINT)


def test_how_to_call_an_endpoint_is_its_scoring_uri_and_a_key_that_opens_it_kept_out_of_sight(
        adapter: Adapter, deployed: EndpointInfo) -> None:
    """What `autopilot endpoint credentials` shows (the key left out, the hint instead) and what a user's own
    client needs: the endpoint's stable URL, a key it accepts (and no other), the same on every call."""
    access = adapter.platform.endpoint_access(ENDPOINT)
    assert access.scoring_uri == deployed.scoring_uri and access.key
    assert access.key_hint.strip() and access.key not in access.key_hint
    assert access.key not in repr(access) and access.key not in str(access)
    assert adapter.platform.endpoint_access(ENDPOINT).key == access.key
    if adapter.data_plane:
        assert adapter.call_directly(access, access.key, "blue") == 200
        assert adapter.call_directly(access, "not-" + access.key, "blue") == 401
    with pytest.raises(NotFoundError):
        adapter.platform.endpoint_access("ep-contract-none")


def test_deleting_the_endpoint_removes_it_and_is_repeatable(adapter: Adapter, deployed: EndpointInfo) -> None:
    assert adapter.platform.get_endpoint(ENDPOINT) is not None
    adapter.platform.delete_endpoint(ENDPOINT)
    assert adapter.platform.get_endpoint(ENDPOINT) is None
    assert ENDPOINT not in {e.name for e in adapter.platform.list_endpoints()}
    adapter.platform.delete_endpoint(ENDPOINT)


def test_a_finished_job_records_its_training_loss_and_names_what_it_does_not_record(
        adapter: Adapter, finished: JobState) -> None:
    record = adapter.platform.training_record(finished.name)
    steps = [step for step, _ in record.loss_curve]
    assert len(steps) >= 2 and steps == sorted(steps) and len(set(steps)) == len(steps)
    assert all(math.isfinite(loss) and loss > 0 for _, loss in record.loss_curve)
    # Every figure the page shows is there, or named as not recorded with why: no silent gap.
    assert record.validation_loss or record.missing.get("validation_loss")
    assert record.evaluation is not None or record.missing.get("evaluation")
    assert all(why.strip() for why in record.missing.values())


def test_the_training_record_of_an_unknown_job_is_not_found(adapter: Adapter) -> None:
    with pytest.raises(NotFoundError):
        adapter.platform.training_record("ftap-no-such-job")
