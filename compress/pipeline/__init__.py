"""The job and what composes its steps: the cached baseline, the pruned-model cache, cold
loading, the sensitivity scan and the checks every job gets before it starts.

Importing this package imports nothing heavy: the pre-flight checks run before torch loads.
"""
