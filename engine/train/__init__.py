"""Fine-tuning: the training child (`python -m engine.train <job dir>`, run.py), the trainer over TRL + PEFT
(training.py), its data read from disk (train_data.py), step metrics to MLflow (tracking.py) and the
evaluation of base, candidate and live models (evaluate.py)."""
