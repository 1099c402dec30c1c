"""Queues: the message side of the lifecycle behind one port, with two backends.

    port.py            the port: MessageQueue (send with a visibility delay, receive, delete, release) and its
                       errors; Delivery, one received message with its dequeue count
    storage_queue.py   StorageQueue: Azure Queue Storage (Azurite locally), base64 text as the Functions
                       queue trigger reads it
    memory.py          InMemoryQueue: the same contract in process memory, on a clock tests can move

The app itself only sends (the step queue); receiving is the Functions host's job on Azure, the devhost's
here, and the tests'.
"""

from shared.queues.port import (
    MAX_DELAY,
    MAX_MESSAGE_BYTES,
    Delivery,
    MessageQueue,
    QueueError,
    QueueUnavailable,
    ReceiptExpired,
    poison_queue_name,
)

__all__ = ["MAX_DELAY", "MAX_MESSAGE_BYTES", "Delivery", "MessageQueue", "QueueError", "QueueUnavailable",
           "ReceiptExpired", "poison_queue_name"]
