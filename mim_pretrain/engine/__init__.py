"""Engine parts: optimizer-wrapper constructors (mmengine root registry)."""
from .optim import LayerDecayOptimWrapperConstructor

__all__ = ['LayerDecayOptimWrapperConstructor']
