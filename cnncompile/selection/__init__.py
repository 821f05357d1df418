"""Per-conv algorithm, layout and tile selection for a target.

    candidates.py   the ways a conv may be computed on a target (Candidate, candidates)
    cost.py         the cost model: estimated seconds of a candidate
    calibration.py  the model's measured efficiencies, and where they come from
    select.py       the select-conv-algorithms pass and the Choice it records per conv
    options.py      the pass's options, as pipelines name and build it
    tuning_cache.py the measured seconds per workload and target that the tuner stores (tuning/)
    explain.py      `cnncompile compile --explain`
"""
