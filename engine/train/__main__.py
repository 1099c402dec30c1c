"""`python -m engine.train <job_dir>`: the training child the local adapter starts for each job."""

import os
import sys

# Before anything imports transformers: a job never downloads (the adapter sets these too).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from engine.train.run import main

sys.exit(main(sys.argv))
