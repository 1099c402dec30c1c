"""Blob trigger on the incoming container (Event Grid source): hand the upload to the lifecycle.

The SDK-type binding gives a `BlobClient`, so the core streams the blob in chunks; the plain
`InputStream` binding would read the whole file into memory first.
"""

import logging

import azure.functions as func
import azurefunctions.extensions.bindings.blob as blob

from functions.worker import lifecycle
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
