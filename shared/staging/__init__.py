"""Staging: the blob side of the lifecycle behind one port, with two backends.

    port.py         the port: BlobStore (properties, ranged reads, listings, staged writes, copy, delete)
    reader.py       BlobReader: one version of a blob by size + ranged reads, or as chunks / lines
    quarantine.py   the copy-verify-report-delete rules for a rejected upload
    azure_blob.py   AzureBlobStore: Azure Blob Storage (Azurite locally)
    memory.py       InMemoryBlobStore: the same contract in process memory
"""

from shared.staging.port import BlobChanged, BlobInfo, BlobMissing, BlobRef, BlobStore, StagingError
from shared.staging.quarantine import QuarantineError, destination_name, quarantine
from shared.staging.reader import BlobReader, open_blob, read_all

__all__ = ["BlobChanged", "BlobInfo", "BlobMissing", "BlobReader", "BlobRef", "BlobStore", "QuarantineError",
           "StagingError", "destination_name", "open_blob", "quarantine", "read_all"]
