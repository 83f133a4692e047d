"""Training any registered model: opening a run (settings, data, model, optimiser; resume), the
loop (`loop.train`), validation through etude.evaluation.likelihood, run checkpoints with
optimiser state, the metrics log, and data-parallel processes (torchrun)."""
