"""Measuring music and models: pure metric functions on notes and spectra, likelihood of tokens
and frames (with the unigram and per-key marginal floors), memorisation against the training
set, and `etude evaluate`: generated sets against the original and baselines, as JSON and HTML."""
