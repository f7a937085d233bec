"""Engine parts (mmengine root registries, found from every scope):
optimizer-wrapper constructors, exact-resume training loops, hooks."""
from .hooks import FiniteLossHook
from .loops import (RESUMABLE_LOOPS, ResumableEpochBasedTrainLoop,
                    ResumableIterBasedTrainLoop, reseed)
from .optim import LayerDecayOptimWrapperConstructor

__all__ = [
    'LayerDecayOptimWrapperConstructor', 'FiniteLossHook',
    'ResumableEpochBasedTrainLoop', 'ResumableIterBasedTrainLoop',
    'RESUMABLE_LOOPS', 'reseed'
]
