"""Measuring music and models: pure metric functions on notes and spectra, measures of form
(repetition, key, phrases, pulse), likelihood of tokens and frames (with the unigram and per-key
marginal floors), memorisation against the training set, the genre classifier (the judge of
genre adherence), and `etude evaluate`: generated sets against the original and baselines, as
JSON and HTML."""
