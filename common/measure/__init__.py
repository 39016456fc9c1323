"""The measurement engine: how a suite's training is timed, scheduled and summarised.

hooks (the blocks of steps a suite reports), turns and schedule (processes taking turns),
machine (its state around each block), allocator (malloc fixed before timing), runner (one
variant's measurement in one process), speed (intervals from the rounds and replicates),
metrics (accuracy, memory), environment (what the record says about the machine), processes
(stopping a process tree).
"""
