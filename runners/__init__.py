"""The top of the house: what runs a pipeline. `compare` (the multitask run
against one single-task run per task, `make compare`) and `run_guard` (the
local output dir's lock, clean-up of killed runs and progress lines), used by
run_local.py. Nothing in the project imports from here."""
