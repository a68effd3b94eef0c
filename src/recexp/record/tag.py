"""Every MLflow tag name recexp writes or reads, defined once. Writers live in ``record/``; readers
(``analysis/``) import the same names, so a renamed tag cannot leave a reader behind."""

from __future__ import annotations

# MLflow's own
RUN_NAME = "mlflow.runName"
NOTE = "mlflow.note.content"  # the run's description in the UI: recexp's hypothesis text

# short names the MLflow UI shows as column headers (record/ui_view.py's landing view): the option
# names the user picked (sasrec, ce, uniform) and the dataset's name; on a sweep's parent run, the
# values of its jobs
COL_DATASET = "dataset"
COL_MODEL = "model"
COL_LOSS = "loss"
COL_SAMPLER = "sampler"

# what the run is
ROLE = "recexp.role"  # pretrain | sweep (parent run) | absent for a training run
DATASET = "recexp.dataset"
DATASET_FINGERPRINT = "recexp.dataset_fingerprint"
MODEL = "recexp.model"
LOSS = "recexp.loss"
SAMPLER = "recexp.sampler"
PRESET = "recexp.preset"  # the experiment= preset ('' when none)
PROTOCOL = "recexp.protocol"  # JSON: split, evaluator, masking rule
DEVICE = "recexp.device"
CPU_THREADS = "recexp.cpu_threads"  # "1 thread (auto: 2 cores, 1 busy elsewhere)": runtime/threads.py
PRECISION = "recexp.precision"  # bf16-autocast | fp32: what the training step ran in
AUDIT = "recexp.audit"  # JSON: the leakage audit of the split
WARNING = "recexp.warning"  # e.g. still improving at the epoch cap
GIT_COMMIT = "recexp.git_commit"
CONFIG_HASH = "recexp.config_hash"  # resume and skip match runs by it
ERROR = "recexp.error"  # why a FAILED / KILLED run ended
EVALUATED = "recexp.evaluated"  # test metrics logged afterwards by `recexp evaluate`
PRETRAINED_FROM = "recexp.pretrained_from"
PRETRAINED_PATH = "recexp.pretrained_path"
PRETRAINED_EPOCHS = "recexp.pretrained_epochs"
PRETRAIN_WEIGHTS = "recexp.pretrain_weights"

# where and how it runs (liveness: a dead job's run is found and closed by the next start)
HOST = "recexp.host"
PID = "recexp.pid"
HEARTBEAT = "recexp.heartbeat"
OUTPUT_DIR = "recexp.output_dir"
SCHEDULER_JOB = "recexp.scheduler_job"  # SLURM job (array task) id: a requeued job finds its run

# sweeps
SWEEP_ID = "recexp.sweep_id"
SWEEP_KEY = "recexp.sweep_key"
SWEEP_OVERRIDES = "recexp.sweep_overrides"
JOB = "recexp.job"  # "<hydra job num>"
OVERRIDES = "recexp.overrides"  # the job's own overrides (loss=ce seed=1)
SWEPT = "recexp.swept"  # on a sweep's parent: the keys it sweeps ("loss seed")
RERUNS = "recexp.reruns"
JOBS = "recexp.jobs"
JOBS_FAILED = "recexp.jobs_failed"
JOBS_SKIPPED = "recexp.jobs_skipped"
IN_SWEEP_PREFIX = "recexp.in_sweep."  # + sweep id: a FINISHED run reused by that sweep

# hypotheses and verdicts
HYPOTHESIS = "recexp.hypothesis"  # free text of the run's hypothesis
HYPOTHESIS_NAME = "recexp.hypothesis_name"
HYPOTHESIS_LEVEL = "recexp.hypothesis_level"
HYPOTHESIS_SHA256 = "recexp.hypothesis_sha256"
HYPOTHESIS_FILE = "recexp.hypothesis_file"
REGISTERED_AT = "recexp.registered_at"
VERDICT = "recexp.verdict"
