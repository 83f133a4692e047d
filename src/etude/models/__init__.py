"""The models and their one interface (`base`): the LSTM event generator, piano-roll LSTMs with
Bernoulli, NADE or RBM outputs, the window RBM, the registry that builds a model from its config,
self-contained checkpoint folders (`checkpoint`), which generation, evaluation and training all
load, and the shipped models (`pretrained`)."""
