"""Blob trigger on the incoming container (Event Grid source): hand the upload to the lifecycle.

The SDK-type binding gives a `BlobClient`, so the core streams the blob in chunks; the plain
`InputStream` binding would read the whole file into memory first.
"""

import json
import logging

import azure.functions as func
import azurefunctions.extensions.bindings.blob as blob

from functions.worker import lifecycle
from shared.events import BLOB_TRIGGER_POISON_QUEUE, MalformedEvent, parse_blob_trigger_message
from shared.staging import BlobRef

bp = func.Blueprint()
log = logging.getLogger(__name__)


@bp.function_name("ingest")
@bp.blob_trigger(arg_name="client", path="%INCOMING_CONTAINER%/{name}", connection="AUTOPILOT_STORAGE",
                 source=func.BlobSource.EVENT_GRID)
def ingest(client: blob.BlobClient) -> None:
    """A new blob in the incoming container: validate, split, stage and submit (or quarantine)."""
    outcome = lifecycle().on_upload(BlobRef(client.container_name, client.blob_name))
    log.info("upload %s/%s: %s", client.container_name, client.blob_name, outcome)


@bp.function_name("ingest_poison")
@bp.queue_trigger(arg_name="message", queue_name=BLOB_TRIGGER_POISON_QUEUE, connection="AUTOPILOT_STORAGE")
def ingest_poison(message: func.QueueMessage) -> None:
    """The host gave up on an upload after 5 failed ingests: record the upload failed, alert once."""
    try:
        poisoned = parse_blob_trigger_message(json.loads(message.get_body()))
    except (MalformedEvent, ValueError) as exc:
        log.error("unreadable blob trigger poison message %s dropped: %s", message.id, exc)
        return
    reason = (f"{poisoned.function_id} failed on it on every delivery (its message was moved to "
              f"{BLOB_TRIGGER_POISON_QUEUE})")
    outcome = lifecycle().on_upload_failed(BlobRef(poisoned.container, poisoned.name), poisoned.etag, reason)
    log.error("upload %s/%s given up by the blob trigger: %s", poisoned.container, poisoned.name, outcome)
