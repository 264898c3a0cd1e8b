"""The one training template every learned stage follows: a ``fit_*`` entry point with plain arguments that returns
a ``TrainingResult`` (model + what tracking needs), one LR schedule helper, one checkpoint format."""
