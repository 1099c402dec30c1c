"""The front door: one stable, OpenAI-compatible address for every model, which wakes a sleeping one.

    keys.py     the front door's key: from FRONT_DOOR_KEY, or made once under the local data dir; compared in
                constant time, never logged
    errors.py   Refusal: an error answer in OpenAI's shape, with the retry headers its client reads
    door.py     FrontDoor: model name -> endpoint, live deployment -> forward, asleep -> one wake and a hold
"""

from shared.front.door import FrontDoor, endpoint_for
from shared.front.errors import Refusal
from shared.front.keys import front_key

__all__ = ["FrontDoor", "Refusal", "endpoint_for", "front_key"]
