"""Engine parts (mmengine root registries, found from every scope):
the mixed-precision optimizer wrapper, optimizer-wrapper constructors,
exact-resume training loops, hooks."""
from .amp import MixedPrecisionOptimWrapper
from .budget import BUDGET_POINTS, TimeBudgetHook
from .hooks import FiniteLossHook, Fp16CompressionHook
from .loops import (RESUMABLE_LOOPS, ResumableEpochBasedTrainLoop,
                    ResumableIterBasedTrainLoop, reseed)
from .optim import LayerDecayOptimWrapperConstructor

__all__ = [
    'MixedPrecisionOptimWrapper',
    'LayerDecayOptimWrapperConstructor', 'FiniteLossHook',
    'Fp16CompressionHook', 'TimeBudgetHook', 'BUDGET_POINTS',
    'ResumableEpochBasedTrainLoop', 'ResumableIterBasedTrainLoop',
    'RESUMABLE_LOOPS', 'reseed'
]
