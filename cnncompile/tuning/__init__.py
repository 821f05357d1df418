"""Measured autotuning: each conv workload's candidates timed on the target, stored in the
tuning cache that selection reads (selection/tuning_cache.py).

    measure.py   one candidate's kernel built alone and timed, locally or over RPC
    tuner.py     the loop over a graph's workloads, within a time budget
    budget.py    --tune-budget durations and the clock
    rpc.py       devices from a TVM RPC tracker
    progress.py  what a run reports as it goes (the terminal's bar is tools/progress.py)
"""
