"""The weight-file tools: ``tools/model_converters/extract_weights.py`` and
``tools/model_converters/convert_checkpoint.py``.

Their work is :func:`~mim_pretrain.apis.pipeline.extract_weights` and
:func:`~mim_pretrain.apis.pipeline.convert_weights`; here are their command
lines and what they print.
"""
import argparse
from typing import Dict, List, Optional, Tuple

import torch

from ..converters import CONVERTERS
from .pipeline import convert_weights, extract_weights


def build_extract_parser() -> argparse.ArgumentParser:
    """Command-line parser of ``tools/model_converters/extract_weights.py``.

    Returns:
        argparse.ArgumentParser: ``CHECKPOINT OUT [--prefix P]
        [--strip-prefix] [--half]``.
    """
    parser = argparse.ArgumentParser(
        description='Write the state dict of a full checkpoint to a plain '
        'weights file.')
    parser.add_argument('checkpoint', help='the full checkpoint')
    parser.add_argument('out', help='the weights file to write')
    parser.add_argument(
        '--prefix',
        default='',
        help='keep only keys that start with this (e.g. backbone.)')
    parser.add_argument(
        '--strip-prefix',
        action='store_true',
        help='remove --prefix from the kept keys')
    parser.add_argument(
        '--half',
        action='store_true',
        help='write floating-point tensors as float16 (half the size)')
    return parser


def extract_weights_main(
        argv: Optional[List[str]] = None) -> Dict[str, torch.Tensor]:
    """Run ``tools/model_converters/extract_weights.py``.

    Args:
        argv: The command line without the program name; ``None`` reads
            ``sys.argv``.

    Returns:
        dict: The tensors written, by key.

    Raises:
        SystemExit: No tensor key starts with ``--prefix``.
    """
    args = build_extract_parser().parse_args(argv)
    kept = extract_weights(args.checkpoint, args.out, args.prefix,
                           args.strip_prefix, args.half)
    print(f'wrote {len(kept)} tensors to {args.out}')
    return kept


def build_convert_parser() -> argparse.ArgumentParser:
    """Command-line parser of ``tools/model_converters/convert_checkpoint.py``.

    Returns:
        argparse.ArgumentParser: ``SRC DST --format FORMAT``, FORMAT a key of
        :data:`mim_pretrain.converters.CONVERTERS`.
    """
    parser = argparse.ArgumentParser(
        description='Convert a published ViT or Swin checkpoint to this '
        'toolkit\'s layout.')
    parser.add_argument('src', help='the published checkpoint')
    parser.add_argument('dst', help='where to write the converted weights')
    parser.add_argument('--format', required=True, choices=sorted(CONVERTERS),
                        help='the layout of SRC')
    return parser


def convert_checkpoint_main(
    argv: Optional[List[str]] = None
) -> Tuple[Dict[str, torch.Tensor], List[str]]:
    """Run ``tools/model_converters/convert_checkpoint.py``.

    Args:
        argv: The command line without the program name; ``None`` reads
            ``sys.argv``.

    Returns:
        tuple: The tensors written and the source keys dropped.

    Raises:
        SystemExit: No key of the ``--format`` layout is in SRC.
    """
    args = build_convert_parser().parse_args(argv)
    converted, dropped = convert_weights(args.src, args.dst, args.format)
    shown = ''
    if dropped:
        more = ' ...' if len(dropped) > 8 else ''
        shown = f': {sorted(dropped)[:8]}{more}'
    print(f'wrote {len(converted)} tensors to {args.dst}; dropped '
          f'{len(dropped)} source keys{shown}')
    return converted, dropped
