"""Local online endpoints: the endpoint half of the platform port, served from this machine.

An endpoint is a folder under `<data_dir>/endpoints/` (see endpoint_files). A deployment of a LoRA fine-tune
whose adapter was registered with it is an adapter in its base model's one shared server
(`engine.serve.shared_server`), which every endpoint's adapters of that base share; any other
deployment (a full fine-tune, a model without its adapter) is one `engine.serve.model_server` process of
its own on a loopback port (see server_process). Every state change holds the endpoint's fcntl lock, because
two handlers can deploy to the same endpoint at once; waiting for a server to load its model does not, so a
slow start never blocks other endpoints' work or a second deploy of the same.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import threading
import time
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from shared import deadline
from shared.platforms.endpoint_names import ENDPOINT_NAME_RULE
from shared.platforms.local import mlflow_store, server_process
from shared.platforms.local.endpoint_files import (
    DeploymentState,
    EndpointFiles,
    EndpointState,
    locked,
    now,
    read_state,
    write_state,
)
from shared.platforms.port import (
    ActivityUnavailable,
    DeploymentStatus,
    EndpointAccess,
    EndpointInfo,
    ModelRef,
    NotFoundError,
    PlatformError,
    Provisioning,
    RequestRefused,
    TransientPlatformError,
    check_name,
)
from shared.settings import Settings


class LocalEndpoints:
    """Online endpoints whose deployments run as local uvicorn processes (see the module docstring)."""

    def __init__(self, settings: Settings, *, ready_timeout_s: float = 180.0,
                 score_timeout_s: float = 300.0, share_base_models: bool = True) -> None:
        """`share_base_models=False` gives every deployment a process of its own (the benchmark's
        comparison)."""
        self._share = share_base_models
        self._data_dir = settings.data_dir.resolve()
        self._root = self._data_dir / "endpoints"
        self._ready_timeout_s = ready_timeout_s
        self._score_timeout_s = score_timeout_s

    def deploy(self, model: ModelRef, endpoint: str, deployment: str,
               tags: Mapping[str, str]) -> EndpointInfo:
        """Create the endpoint if needed, then start the deployment at 0 % traffic and wait until it is ready.

        `tags` apply when the endpoint is created; an existing endpoint keeps its own (a user's keep tag too).
        A deployment already running the same model is left as is; one running another model (or not running)
        is restarted with `model`, keeping its traffic. Raises PlatformError if the server dies while loading,
        TransientPlatformError if it is not ready within the timeout.
        """
        files, entry = self._start(model, endpoint, deployment, tags)
        self._await_ready(files, endpoint, deployment, entry)
        return self._info(endpoint, self._require(files, endpoint))

    def begin_deployment(self, model: ModelRef, endpoint: str, deployment: str,
                         tags: Mapping[str, str]) -> DeploymentStatus:
        """As `deploy`, but return at once: the server loads its model while the caller polls
        `deployment_status` (Creating until it answers its health check, as on Azure)."""
        self._start(model, endpoint, deployment, tags)
        return self.deployment_status(endpoint, deployment)

    def deployment_status(self, endpoint: str, deployment: str) -> DeploymentStatus:
        """Succeeded once the server answers its health check as `deployment`; Creating while it loads its
        model; Failed (with its log's last lines) if it stopped; NotFoundError if there is no such
        deployment."""
        files = self._files(endpoint)
        state = read_state(files)
        entry = state.deployments.get(deployment) if state else None
        if entry is None:
            raise NotFoundError(f"endpoint {endpoint} has no deployment {deployment!r}")
        model = _model_ref(entry)
        if not server_process.alive(entry, files):
            return DeploymentStatus(endpoint, deployment, Provisioning.FAILED, model,
                                    f"its server is not running; last lines of its log:\n"
                                    f"{self._log_tail(files, endpoint, deployment)}")
        ready, failure = self._health(entry, deployment)
        if failure is not None:
            return DeploymentStatus(endpoint, deployment, Provisioning.FAILED, model, failure)
        return DeploymentStatus(endpoint, deployment,
                                Provisioning.SUCCEEDED if ready else Provisioning.CREATING, model)

    def _start(self, model: ModelRef, endpoint: str, deployment: str,
               tags: Mapping[str, str]) -> tuple[EndpointFiles, DeploymentState]:
        """Create the endpoint if needed and start the deployment's server (unless it runs `model`)."""
        files = self._files(endpoint)
        check_name("deployment", deployment)
        model_uri = mlflow_store.model_version_uri(model.name, model.version)
        model_dir = self.model_dir(model)
        adapter = self.adapter_of(model) if self._share else None
        with locked(self._root, endpoint):
            state = read_state(files) or self._create(files, tags)
            self._ensure_router(files, state)
            existing = state.deployments.get(deployment)
            created = not (existing and existing.model_uri == model_uri
                           and server_process.alive(existing, files))
            if existing and not created:
                entry = existing
            else:
                if existing and not existing.pool:  # a shared server drops the old adapter by itself
                    server_process.stop(existing.pid, files)
                if adapter is None:
                    entry = server_process.start(files, deployment, model_uri, model_dir)
                    self._record(files, state, deployment, entry)
                else:
                    base_dir = adapter[1]
                    with server_process.pool_locked(self._root, server_process.pool_id(base_dir)):
                        pool, port, pid = server_process.shared_server(self._root, base_dir)
                        entry = DeploymentState(model_uri=model_uri, port=port, pid=pid, created_at=now(),
                                                adapter=str(adapter[0]), pool=pool,
                                                prefix=f"/d/{endpoint}/{deployment}")
                        self._record(files, state, deployment, entry)
        if created:
            # A restart that keeps all the traffic (a new model on the live deployment) is champion at once.
            mlflow_store.follow_deployment(self._data_dir, model_uri, "took all traffic"
                                           if state.traffic.get(deployment, 0) == 100 else "created")
        return files, entry

    @staticmethod
    def _record(files: EndpointFiles, state: EndpointState, deployment: str, entry: DeploymentState) -> None:
        state.deployments[deployment] = entry
        state.traffic.setdefault(deployment, 0)
        write_state(files, state)

    def adapter_of(self, model: ModelRef) -> tuple[Path, Path] | None:
        """(adapter folder, base model folder) of a LoRA fine-tune whose run logged its adapter (with its
        tokenizer) and whose base model is a folder here; None for anything else (it gets its own process)."""
        from mlflow.exceptions import MlflowException

        client = mlflow_store.use(self._data_dir)
        try:
            version = client.get_model_version(model.name, str(model.version))
            if not version.run_id:
                return None
            artifacts = client.get_run(version.run_id).info.artifact_uri
            adapter = Path(str(artifacts).removeprefix("file://")) / "adapter"
            config = json.loads((adapter / "adapter_config.json").read_text())
        except (MlflowException, OSError, ValueError):
            return None
        base = config.get("base_model_name_or_path")
        if not isinstance(base, str) or not (Path(base) / "config.json").is_file() \
                or not (adapter / "tokenizer_config.json").is_file():
            return None
        return adapter, Path(base).resolve()

    def score(self, endpoint: str, payload: Mapping[str, Any], deployment: str | None = None) -> Any:
        """POST `payload` to /score of `deployment`, or of the deployment the traffic split favours."""
        files = self._files(endpoint)
        state = self._require(files, endpoint)
        name = deployment or _leading(state.traffic)
        if name is None:
            raise PlatformError(f"endpoint {endpoint} sends no traffic to any deployment; name one to score")
        entry = state.deployments.get(name)
        if entry is None:
            raise NotFoundError(f"endpoint {endpoint} has no deployment {name!r}")
        if not server_process.alive(entry, files):
            raise PlatformError(f"deployment {name} of endpoint {endpoint} is not running; deploy it again")
        url = f"http://127.0.0.1:{entry.port}{entry.prefix}/score"
        headers = {"Authorization": f"Bearer {self.get_key(endpoint)}"}
        try:
            response = httpx.post(url, json=dict(payload), headers=headers,
                                  timeout=deadline.clamp(self._score_timeout_s))  # within the step's time
        except httpx.TransportError as exc:
            raise TransientPlatformError(
                f"deployment {name} of endpoint {endpoint} did not answer at {url} ({type(exc).__name__})"
            ) from None
        if response.status_code >= 500 or response.status_code == 429:
            raise TransientPlatformError(f"deployment {name} of endpoint {endpoint} answered "
                                         f"{response.status_code}: {response.text[:500]}")
        if response.status_code >= 400:
            raise PlatformError(f"deployment {name} of endpoint {endpoint} refused the request "
                                f"({response.status_code}): {refusal(response)}")
        return response.json()

    def chat(self, endpoint: str, deployment: str, request: Mapping[str, Any]) -> dict[str, Any]:
        """POST the request to the deployment's /v1/chat/completions (kept-alive connections, one pool)."""
        url, headers = self._chat_target(endpoint, deployment)
        try:
            response = _client().post(url, json={**request, "stream": False}, headers=headers,
                                      timeout=self._score_timeout_s)
        except httpx.TransportError as exc:
            raise TransientPlatformError(f"deployment {deployment} of endpoint {endpoint} did not answer "
                                         f"({type(exc).__name__})") from None
        _raise_for(response.status_code, response.text, endpoint, deployment)
        answer: dict[str, Any] = response.json()
        return answer

    def chat_stream(self, endpoint: str, deployment: str, request: Mapping[str, Any]) -> Iterator[str]:
        """The deployment's own stream, passed on event by event."""
        url, headers = self._chat_target(endpoint, deployment)
        outgoing = _client().build_request("POST", url, json={**request, "stream": True}, headers=headers,
                                           timeout=self._score_timeout_s)
        try:
            response = _client().send(outgoing, stream=True)
        except httpx.TransportError as exc:
            raise TransientPlatformError(f"deployment {deployment} of endpoint {endpoint} did not answer "
                                         f"({type(exc).__name__})") from None
        if response.status_code >= 400:
            text = response.read().decode(errors="replace")
            response.close()
            _raise_for(response.status_code, text, endpoint, deployment)
        return _events(response)

    def _chat_target(self, endpoint: str, deployment: str) -> tuple[str, dict[str, str]]:
        files = self._files(endpoint)
        state = self._require(files, endpoint)
        entry = state.deployments.get(deployment)
        if entry is None:
            raise NotFoundError(f"endpoint {endpoint} has no deployment {deployment!r}")
        return (f"http://127.0.0.1:{entry.port}{entry.prefix}/v1/chat/completions",
                {"Authorization": f"Bearer {self.get_key(endpoint)}"})

    def set_traffic(self, endpoint: str, traffic: Mapping[str, int]) -> None:
        """Set the split; deployments left out get 0 %, and the percentages must sum to 100 (or 0)."""
        files = self._files(endpoint)
        with locked(self._root, endpoint):
            state = self._require(files, endpoint)
            unknown = sorted(set(traffic) - set(state.deployments))
            if unknown:
                raise NotFoundError(f"endpoint {endpoint} has no deployment(s) {unknown}")
            if any(not isinstance(v, int) or not 0 <= v <= 100 for v in traffic.values()):
                raise PlatformError(f"traffic shares must be integers from 0 to 100, got {dict(traffic)}")
            if sum(traffic.values()) not in (0, 100):
                raise PlatformError(f"traffic must sum to 100 (or 0), got {sum(traffic.values())}")
            state.traffic = {name: int(traffic.get(name, 0)) for name in state.deployments}
            write_state(files, state)
        for name, share in state.traffic.items():
            if share == 100:
                mlflow_store.follow_deployment(self._data_dir, state.deployments[name].model_uri,
                                               "took all traffic")

    def delete_deployment(self, endpoint: str, deployment: str) -> None:
        """Stop and remove one deployment. Like Azure ML, refuses one that still takes traffic."""
        files = self._files(endpoint)
        check_name("deployment", deployment)
        with locked(self._root, endpoint):
            state = read_state(files)
            entry = state.deployments.get(deployment) if state else None
            if state is None or entry is None:
                return
            if state.traffic.get(deployment, 0) > 0:
                raise PlatformError(f"deployment {deployment} still takes {state.traffic[deployment]} % of "
                                    f"endpoint {endpoint}'s traffic; move its traffic before deleting it")
            if not entry.pool:  # a shared server unloads the adapter once the state no longer names it
                server_process.stop(entry.pid, files)
            del state.deployments[deployment]
            state.traffic.pop(deployment, None)
            write_state(files, state)
            files.server_log(deployment).unlink(missing_ok=True)
        mlflow_store.follow_deployment(self._data_dir, entry.model_uri, "deleted")

    def delete_endpoint(self, endpoint: str) -> None:
        """Stop every deployment and remove the endpoint's folder (key and request log included).

        The registry's champion alias stays on the version that served: it is what a redeploy brings back.
        """
        files = self._files(endpoint)
        with locked(self._root, endpoint):
            state = read_state(files) if files.root.exists() else None
            for entry in (state.deployments.values() if state else ()):
                if not entry.pool:
                    server_process.stop(entry.pid, files)
            if state:
                server_process.stop(state.router_pid, files, module=server_process.ROUTER_MODULE)
            shutil.rmtree(files.root, ignore_errors=True)
        for entry in (state.deployments.values() if state else ()):
            mlflow_store.follow_deployment(self._data_dir, entry.model_uri, "deleted")

    def get_endpoint(self, endpoint: str) -> EndpointInfo | None:
        """The endpoint, or None if it does not exist."""
        state = read_state(self._files(endpoint))
        return self._info(endpoint, state) if state else None

    def list_endpoints(self) -> list[EndpointInfo]:
        """Every endpoint under this data dir, by name."""
        if not self._root.is_dir():
            return []
        found = (self.get_endpoint(p.name) for p in sorted(self._root.iterdir())
                 if ENDPOINT_NAME_RULE.fullmatch(p.name))
        return [info for info in found if info is not None]

    def endpoint_activity(self, endpoint: str) -> datetime | None:
        """When the endpoint last answered a scoring request, from its request log (None if never)."""
        files = self._files(endpoint)
        self._require(files, endpoint)
        try:
            with open(files.requests, "rb") as log:
                log.seek(max(0, log.seek(0, os.SEEK_END) - 256))
                lines = log.read().decode().split()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise ActivityUnavailable(f"cannot read endpoint {endpoint}'s request log: {exc}") from exc
        try:
            return datetime.fromisoformat(lines[-1]) if lines else None
        except ValueError as exc:
            raise ActivityUnavailable(f"endpoint {endpoint}'s request log ends in {lines[-1]!r}") from exc

    def endpoint_access(self, endpoint: str) -> EndpointAccess:
        """The router's URL (the endpoint's own, whichever deployment serves), its OpenAI base, and the key
        from its 0600 file, whose path is the hint."""
        info = self.get_endpoint(endpoint)
        if info is None:
            raise NotFoundError(f"endpoint {endpoint} does not exist")
        if info.scoring_uri is None:
            raise NotFoundError(f"endpoint {endpoint} has no scoring URI yet (its router never started)")
        return EndpointAccess(info.scoring_uri, self.get_key(endpoint),
                              key_hint=f"it is in {self.key_file(endpoint)} (readable by you only): `cat` it",
                              openai_base_url=f"{info.scoring_uri.removesuffix('/score')}/v1")

    def key_file(self, endpoint: str) -> Path:
        """Where the endpoint's key is kept (0600), for a user who wants to read it themselves."""
        return self._files(endpoint).key

    def get_key(self, endpoint: str) -> str:
        """The endpoint key (as Azure ML's get_keys gives it), for clients calling the endpoint directly."""
        try:
            return self._files(endpoint).key.read_text().strip()
        except FileNotFoundError:
            raise NotFoundError(f"endpoint {endpoint} does not exist") from None

    def resume_all(self) -> list[str]:
        """Start again every router and deployment not running (after `stop_all`, or a reboot)."""
        resumed = []
        for info in self.list_endpoints():
            with locked(self._root, info.name):
                current = read_state(self._files(info.name))
                if current is not None:
                    self._ensure_router(self._files(info.name), current)
            state = read_state(self._files(info.name))
            for name, entry in (state.deployments.items() if state else ()):
                model = _model_ref(entry)
                if model and not server_process.alive(entry, self._files(info.name)):
                    self.deploy(model, info.name, name, {})
                    resumed.append(f"{info.name}/{name}")
        return resumed

    def stop_all(self) -> None:
        """Stop every deployment's server (state stays; `resume_all` or a deploy starts it again)."""
        for info in self.list_endpoints():
            files = self._files(info.name)
            with locked(self._root, info.name):
                state = read_state(files)
                for entry in (state.deployments.values() if state else ()):
                    if entry.pool:
                        server_process.stop(entry.pid, EndpointFiles(self._root),
                                            module=server_process.SHARED_MODULE)
                    else:
                        server_process.stop(entry.pid, files)
                    entry.pid = None
                if state:
                    server_process.stop(state.router_pid, files, module=server_process.ROUTER_MODULE)
                    state.router_pid = None
                    write_state(files, state)

    def serving_model(self, endpoint: str) -> ModelRef | None:
        """The model version the endpoint's traffic goes to now (its leading deployment's), if any."""
        state = read_state(self._files(endpoint))
        leading = _leading(state.traffic) if state else None
        entry = state.deployments.get(leading) if state and leading else None
        return _model_ref(entry) if entry else None

    def model_dir(self, model: ModelRef) -> Path:
        """The registered model version's artifact directory in the local store."""
        from mlflow.exceptions import MlflowException

        client = mlflow_store.use(self._data_dir)
        try:
            uri = client.get_model_version_download_uri(model.name, str(model.version))
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                raise NotFoundError(f"model {model.name} version {model.version} is not registered") from None
            raise PlatformError(f"cannot look up model {model.name} version {model.version}: {exc}") from exc
        local = Path(uri.removeprefix("file://"))
        if not local.is_dir():
            raise PlatformError(f"model {model.name} version {model.version} has no files at {uri}")
        return local

    def _files(self, endpoint: str) -> EndpointFiles:
        return EndpointFiles(self._root / check_name("endpoint", endpoint))

    def _require(self, files: EndpointFiles, endpoint: str) -> EndpointState:
        state = read_state(files)
        if state is None:
            raise NotFoundError(f"endpoint {endpoint} does not exist")
        return state

    def _create(self, files: EndpointFiles, tags: Mapping[str, str]) -> EndpointState:
        files.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            fd = os.open(files.key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as key_file:
                key_file.write(secrets.token_urlsafe(32))
        state = EndpointState(tags=dict(tags), created_at=now())
        write_state(files, state)
        return state

    def _ensure_router(self, files: EndpointFiles, state: EndpointState) -> None:
        """Start the endpoint's router unless it runs, on the endpoint's own port once it has one (under the
        endpoint's lock): the endpoint's URL stays the same across deployments, swaps, sleep and restarts."""
        if server_process.running(state.router_pid, files, server_process.ROUTER_MODULE):
            return
        try:
            port, pid = server_process.start_router(files, state.router_port)
        except OSError as exc:
            raise PlatformError(f"endpoint {files.root.name}'s port {state.router_port} is taken by another "
                                f"program ({exc.strerror}); stop it, or delete and recreate the endpoint "
                                "(its URL changes)") from None
        state.router_port, state.router_pid = port, pid
        write_state(files, state)

    def _await_ready(self, files: EndpointFiles, endpoint: str, deployment: str,
                     entry: DeploymentState) -> None:
        deadline = time.monotonic() + self._ready_timeout_s
        while True:
            if not server_process.alive(entry, files):
                self._mark_stopped(files, endpoint, deployment, entry.pid)
                raise PlatformError(f"deployment {deployment} of endpoint {endpoint} stopped while starting; "
                                    f"last lines of its log:\n{self._log_tail(files, endpoint, deployment)}")
            ready, failure = self._health(entry, deployment)
            if ready:
                return
            if failure is not None:
                raise PlatformError(f"deployment {deployment} of endpoint {endpoint} failed: {failure}")
            if time.monotonic() > deadline:
                self._mark_stopped(files, endpoint, deployment, entry.pid)
                raise TransientPlatformError(
                    f"deployment {deployment} of endpoint {endpoint} was not ready within "
                    f"{self._ready_timeout_s:.0f} s; last lines of its log:\n"
                    f"{self._log_tail(files, endpoint, deployment)}")
            time.sleep(0.25)

    @staticmethod
    def _health(entry: DeploymentState, deployment: str, timeout: float = 2.0) -> tuple[bool, str | None]:
        """(ready, why it failed): ready once the server answers its health check as this deployment with
        this model (it has loaded it: on a shared server, the old adapter answers until the new one is
        loaded); a shared server that could not load this incarnation's adapter says why."""
        with contextlib.suppress(httpx.TransportError, ValueError):
            answer = httpx.get(f"http://127.0.0.1:{entry.port}{entry.prefix}/health", timeout=timeout)
            said = answer.json() if answer.status_code in (200, 503) else {}
            if not isinstance(said, dict) or said.get("deployment") != deployment:
                return False, None
            if entry.pool and said.get("created_at") != entry.created_at:
                return False, None  # another incarnation answers: this one is still loading
            if said.get("status") == "failed":
                return False, str(said.get("error") or "its model could not be loaded")
            return said.get("model") == entry.model_uri, None
        return False, None

    def _mark_stopped(self, files: EndpointFiles, endpoint: str, deployment: str, pid: int | None) -> None:
        with locked(self._root, endpoint):
            state = read_state(files)
            entry = state.deployments.get(deployment) if state else None
            if entry is not None and not entry.pool:  # a shared server serves others: it stays
                server_process.stop(pid, files)
            if state and entry and entry.pid == pid:
                entry.pid = None
                write_state(files, state)

    def _log_tail(self, files: EndpointFiles, endpoint: str, deployment: str, lines: int = 25) -> str:
        state = read_state(files)
        entry = state.deployments.get(deployment) if state else None
        log = server_process.pool_log(self._root, entry.pool) if entry and entry.pool \
            else files.server_log(deployment)
        try:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
        with contextlib.suppress(PlatformError):
            tail = tail.replace(self.get_key(endpoint), "***")
        return tail

    def _info(self, endpoint: str, state: EndpointState) -> EndpointInfo:
        ordered = sorted(state.deployments.items(), key=lambda item: item[1].created_at)
        return EndpointInfo(
            name=endpoint,
            tags=dict(state.tags),
            created_at=datetime.fromisoformat(state.created_at),
            traffic=dict(state.traffic),
            deployments=tuple(name for name, _ in ordered),
            # The router's port: the endpoint's URL, whichever deployment serves (or none: asleep).
            scoring_uri=f"http://127.0.0.1:{state.router_port}/score" if state.router_port else None,
            last_deployed_at=datetime.fromisoformat(ordered[-1][1].created_at) if ordered else None,
        )


_CLIENT: httpx.Client | None = None
_CLIENT_LOCK = threading.Lock()


def _client() -> httpx.Client:
    """One pooled client per process: a kept-alive connection saves the front door a TCP handshake a call."""
    global _CLIENT
    with _CLIENT_LOCK:
        if _CLIENT is None:
            _CLIENT = httpx.Client(limits=httpx.Limits(max_connections=64, max_keepalive_connections=16))
        return _CLIENT


def _raise_for(status: int, text: str, endpoint: str, deployment: str) -> None:
    """The platform error an HTTP status of a deployment's answer stands for (none for a success)."""
    where = f"deployment {deployment} of endpoint {endpoint}"
    if status >= 500 or status == 429:
        raise TransientPlatformError(f"{where} answered {status}: {text[:300]}")
    if status == 404:
        raise NotFoundError(f"{where} answered 404: {text[:300]}")
    if status >= 400:
        raise RequestRefused(f"{where} refused the request ({status}): {text[:300]}", status)


def _events(response: httpx.Response) -> Iterator[str]:
    """The SSE events of a streamed answer, each with its blank line; closing this closes the response."""
    try:
        for line in response.iter_lines():
            if line:
                yield f"{line}\n\n"
    finally:
        response.close()


def _leading(traffic: Mapping[str, int]) -> str | None:
    """The deployment that takes the largest share of traffic, if any takes some."""
    name, share = max(traffic.items(), key=lambda item: item[1], default=(None, 0))
    return name if share > 0 else None


def _model_ref(entry: DeploymentState) -> ModelRef | None:
    """The model version a deployment serves, from its recorded MLflow model URI."""
    parsed = mlflow_store.parse_model_version_uri(entry.model_uri)
    return ModelRef(*parsed) if parsed else None


def refusal(response: httpx.Response) -> str:
    """The reason an endpoint gave for refusing a request, as text: its JSON error's message, not the JSON."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    detail = body.get("detail") if isinstance(body, dict) else None
    said = message or (detail if isinstance(detail, str) else None)
    return str(said)[:500] if said else response.text[:500]
