"""Run directories and other outputs (right after the root helpers in the flow): they appear only when complete.

- :mod:`~qtrigger.rundir.files` — files written whole (atomic replace), JSON, provenance;
- :mod:`~qtrigger.rundir.claims` — names, locks, staging folders, stamps of each output kind, and
  ``--overwrite``'s rule: replace only a folder qtrigger stamped as the same kind.
"""

from qtrigger.rundir.claims import (
    EVALUATION,
    KINDS,
    NAME_PATTERN,
    NAME_RULE,
    RTL_PROJECT,
    RUN,
    RUN_ID_FILE,
    Kind,
    OutputLock,
    StagedRun,
    check_distinct,
    check_name,
    check_replaceable,
    claimed_folder,
    claimed_outputs,
    locked_folder,
    new_id,
    read_run_id,
    read_stamp,
    remove_stale_staging,
    write_stamp,
)
from qtrigger.rundir.files import (
    PACKAGES,
    atomic_path,
    atomic_write_text,
    git_revision,
    json_default,
    package_versions,
    read_json,
    write_json,
    write_provenance,
)

__all__ = [
    "EVALUATION",
    "KINDS",
    "Kind",
    "NAME_PATTERN",
    "NAME_RULE",
    "OutputLock",
    "PACKAGES",
    "RTL_PROJECT",
    "RUN",
    "RUN_ID_FILE",
    "StagedRun",
    "atomic_path",
    "atomic_write_text",
    "check_distinct",
    "check_name",
    "check_replaceable",
    "claimed_folder",
    "claimed_outputs",
    "locked_folder",
    "git_revision",
    "json_default",
    "new_id",
    "package_versions",
    "read_json",
    "read_run_id",
    "read_stamp",
    "remove_stale_staging",
    "write_json",
    "write_provenance",
    "write_stamp",
]
