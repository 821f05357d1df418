"""Measured autotuning: each conv workload's candidates timed on the target, kept in a cache.

    cache.py     the cache file (workload, target, versions -> seconds per candidate)
    measure.py   one candidate's kernel built alone and timed, locally or over RPC
    tuner.py     the loop over a graph's workloads, within a time budget
    budget.py    --tune-budget durations and the clock
    rpc.py       devices from a TVM RPC tracker
    progress.py  the progress bar and summary line
"""
