"""Queueing predictions from measured service times: how many requests per second a
compressed model serves within a latency SLO (Erlang C, Pollaczek–Khinchine, SimPy)."""
