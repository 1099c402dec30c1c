"""Typed views of the events we receive: Azure ML run events, and the blob trigger's messages (a storage
BlobCreated event is read by the Functions host, or the devhost's route, not by us).

Handlers read `event.job_status`, not `event["data"]["runStatus"]`; the raw shapes (Event Grid schema and
CloudEvents 1.0) stay in this module. Azure ML calls a job a "run" on the wire; here a run is ours (a ledger
run), so the event's fields are named for what they hold: the job's name, status, type and tags. Builders for
the same shapes live here too, so the local platform emits exactly what Azure ML would.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shared.platforms.port import JobStatus

RUN_COMPLETED = "Microsoft.MachineLearningServices.RunCompleted"
RUN_STATUS_CHANGED = "Microsoft.MachineLearningServices.RunStatusChanged"
BLOB_CREATED = "Microsoft.Storage.BlobCreated"


class MalformedEvent(ValueError):
    """The event body is not an event we can read; acknowledge it and log, never retry it forever."""


@dataclass(frozen=True)
class RunEvent:
    """An Azure ML run event (RunCompleted or RunStatusChanged) about one job, whichever schema it came in."""

    id: str
    event_type: str
    subject: str
    job_name: str  # data.runId: the Azure ML job's name (ours are ftap-<run id>), not our run id
    experiment_name: str
    job_type: str  # data.runType, e.g. azureml.PipelineRun (step runs send their own events)
    job_status: str  # data.runStatus in Azure ML's capitalisation: Completed, Failed, Running, ...
    job_tags: Mapping[str, str] = field(default_factory=dict)
    event_time: datetime | None = None


def normalise_status(raw: str) -> str:
    """Azure ML samples vary in case ('failed', 'Failed'); compare in one canonical spelling."""
    known = JobStatus.parse(raw)
    return known.value if known else raw.strip()


def parse_run_event(body: Mapping[str, Any]) -> RunEvent:
    """Read an Azure ML run event in Event Grid schema or CloudEvents 1.0; raise MalformedEvent otherwise."""
    if not isinstance(body, Mapping):
        raise MalformedEvent("event is not a JSON object")
    cloud = "specversion" in body
    event_type = body.get("type" if cloud else "eventType")
    data = body.get("data")
    if not isinstance(event_type, str) or not isinstance(data, Mapping):
        raise MalformedEvent("event has no type or no data object")
    job_name = data.get("runId")
    if not isinstance(job_name, str) or not job_name:
        raise MalformedEvent(f"{event_type} event has no data.runId")
    if event_type == RUN_COMPLETED:
        status = JobStatus.COMPLETED.value
    elif event_type == RUN_STATUS_CHANGED:
        raw = data.get("runStatus")
        if not isinstance(raw, str):
            raise MalformedEvent("RunStatusChanged event has no data.runStatus")
        status = normalise_status(raw)
    else:
        raise MalformedEvent(f"unexpected event type {event_type!r}")
    tags = data.get("runTags") or {}
    when = body.get("time" if cloud else "eventTime")
    return RunEvent(
        id=str(body.get("id", "")),
        event_type=event_type,
        subject=str(body.get("subject", "")),
        job_name=job_name,
        experiment_name=str(data.get("experimentName", "")),
        job_type=str(data.get("runType", "")),
        job_status=status,
        job_tags={str(k): str(v) for k, v in tags.items()} if isinstance(tags, Mapping) else {},
        event_time=parse_event_time(when),
    )


def run_event(job_name: str, status: str, *, experiment: str, tags: Mapping[str, str],
              job_type: str = "azureml.PipelineRun", topic: str = "local") -> dict[str, Any]:
    """An Azure ML–shaped Event Grid event for `job_name` reaching `status` (RunCompleted on success)."""
    completed = status == JobStatus.COMPLETED
    data: dict[str, Any] = {
        "experimentId": str(uuid.uuid5(uuid.NAMESPACE_URL, experiment)),
        "experimentName": experiment,
        "runId": job_name,
        "runType": job_type,
        "runTags": dict(tags),
        "runProperties": {},
    }
    if not completed:
        data["runStatus"] = status
    return {
        "id": str(uuid.uuid4()),
        "topic": topic,
        "subject": f"experiments/{data['experimentId']}/runs/{job_name}",
        "eventType": RUN_COMPLETED if completed else RUN_STATUS_CHANGED,
        "eventTime": datetime.now(UTC).isoformat(),
        "data": data,
        "dataVersion": "2",
        "metadataVersion": "1",
    }


def blob_created_event(url: str, *, content_length: int, etag: str = "",
                       topic: str = "local") -> dict[str, Any]:
    """A Microsoft.Storage.BlobCreated event in Event Grid schema, as storage would emit for `url`."""
    from shared.storage import split_blob_url

    container, name = split_blob_url(url)
    return {
        "id": str(uuid.uuid4()),
        "topic": topic,
        "subject": f"/blobServices/default/containers/{container}/blobs/{name}",
        "eventType": BLOB_CREATED,
        "eventTime": datetime.now(UTC).isoformat(),
        "data": {
            "api": "PutBlob",
            "eTag": etag,
            "contentType": "application/octet-stream",
            "contentLength": content_length,
            "blobType": "BlockBlob",
            "url": url,
            "sequencer": f"{int(datetime.now(UTC).timestamp() * 1e6):032d}",
        },
        "dataVersion": "",
        "metadataVersion": "1",
    }


BLOB_TRIGGER_POISON_QUEUE = "webjobs-blobtrigger-poison"


@dataclass(frozen=True)
class BlobTriggerMessage:
    """The Functions host's blob trigger message (the WebJobs blobs extension's BlobTriggerMessage): what it
    queues for each BlobCreated, and what it moves to `webjobs-blobtrigger-poison`, in the triggering blob's
    storage account, once the blob function failed maxDequeueCount times (5) on it."""

    function_id: str
    container: str
    name: str
    etag: str  # as the host writes it, in quotes

    def to_json(self) -> dict[str, str]:
        """The message's JSON, field for field as the host serializes it."""
        return {"Type": "BlobTrigger", "FunctionId": self.function_id, "BlobType": "BlockBlob",
                "ContainerName": self.container, "BlobName": self.name, "ETag": self.etag}


def parse_blob_trigger_message(body: Any) -> BlobTriggerMessage:
    """Read a blob trigger message (its JSON, parsed); MalformedEvent if it is not one."""
    if not isinstance(body, Mapping) or body.get("Type", "BlobTrigger") != "BlobTrigger":
        raise MalformedEvent("not a blob trigger message")
    fields = [body.get(k) for k in ("FunctionId", "ContainerName", "BlobName", "ETag")]
    if not all(isinstance(f, str) for f in fields) or not fields[1] or not fields[2]:
        raise MalformedEvent("blob trigger message lacks FunctionId, ContainerName, BlobName or ETag")
    function_id, container, name, etag = (str(f) for f in fields)
    return BlobTriggerMessage(function_id, container, name, etag)


def parse_event_time(raw: Any) -> datetime | None:
    """An event's ISO 8601 time ('Z' or an offset; naive times are UTC); None when absent or unreadable."""
    if not isinstance(raw, str) or not raw:
        return None
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
