"""The plan: what qatlan would change, as data, and how it is saved.

    Plan, Change, Action, Conflict   the model (model.py); `own` says what a change owns;
                                     `tally` counts changes by kind and action
    plan_checksum                    a plan's identity (checksum.py); canonical_sections
                                     its JSON in pieces, each with its top-level key
    write_plan_file, read_plan_file  `qatlan plan --out FILE` files (file.py); PlanFileWriter
                                     writes one from pieces as they are produced
    iter_json, LazyList              plan JSON in pieces (encode.py)

Pure except for file.py, which reads and writes plan files.
"""

from qatlan.plan.checksum import canonical_pieces, canonical_sections, plan_checksum
from qatlan.plan.encode import LazyList, iter_json, split_array
from qatlan.plan.file import (
    PLAN_FILE_VERSION,
    FileChanges,
    PlanFileWriter,
    SavedPlan,
    open_plan_file,
    peek_plan_file,
    read_plan_file,
    read_saved_plan,
    sign,
    signature_ok,
    write_plan_file,
)
from qatlan.plan.model import (FORMAT_VERSION, Action, Change, Conflict, Plan, StreamedChanges, Tally,
                               definitions_of, each_change, own, tally)

__all__ = [
    "FORMAT_VERSION",
    "PLAN_FILE_VERSION",
    "Action",
    "Change",
    "Conflict",
    "FileChanges",
    "LazyList",
    "Plan",
    "PlanFileWriter",
    "SavedPlan",
    "StreamedChanges",
    "Tally",
    "canonical_pieces",
    "canonical_sections",
    "definitions_of",
    "each_change",
    "iter_json",
    "open_plan_file",
    "own",
    "peek_plan_file",
    "plan_checksum",
    "read_plan_file",
    "read_saved_plan",
    "sign",
    "signature_ok",
    "split_array",
    "tally",
    "write_plan_file",
]
