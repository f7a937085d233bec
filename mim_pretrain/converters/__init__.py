"""Converters of published checkpoints to this toolkit's layout."""
from .io import checkpoint_state_dict, read_state_dict
from .swin import convert_localmim_swin, taps_to_mmpretrain
from .vit import (convert_localmim, convert_lomar, convert_mae,
                  convert_mmpretrain_vit, is_mmpretrain_vit)

CONVERTERS = {
    'lomar': convert_lomar,
    'localmim': convert_localmim,
    'localmim-swin': convert_localmim_swin,
    'mae': convert_mae,
    'mmpretrain-vit': convert_mmpretrain_vit,
}

__all__ = [
    'CONVERTERS', 'checkpoint_state_dict', 'read_state_dict',
    'convert_lomar', 'convert_localmim', 'convert_mae',
    'convert_mmpretrain_vit', 'is_mmpretrain_vit', 'convert_localmim_swin',
    'taps_to_mmpretrain'
]
