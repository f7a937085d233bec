"""Extract the weights of a full training checkpoint into a plain file.

A checkpoint written by mmengine's CheckpointHook also pickles the optimizer,
the message hub and other objects, so PyTorch's safe ``weights_only`` loader
refuses it as pretrained weights. This tool loads it once, in full (you name
the file, so you vouch for it), and writes ``{'state_dict': ..., 'meta':
...}`` with tensors only, which loads anywhere with ``weights_only=True``.

    python tools/model_converters/extract_weights.py CKPT OUT \
        [--prefix backbone.] [--strip-prefix]
"""
import argparse

import torch

from mim_pretrain.converters import read_state_dict


def parse_args(argv=None):
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
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    state, ckpt = read_state_dict(args.checkpoint)
    kept = {}
    for key, value in state.items():
        if not torch.is_tensor(value) or not key.startswith(args.prefix):
            continue
        kept[key[len(args.prefix):] if args.strip_prefix else key] = value
    if not kept:
        raise SystemExit(f'{args.checkpoint}: no tensor key starts with '
                         f'{args.prefix!r}')
    meta = {k: v for k, v in ckpt.get('meta', {}).items()
            if isinstance(v, (int, float, str))} if isinstance(
                ckpt.get('meta'), dict) else {}
    torch.save({'state_dict': kept, 'meta': meta}, args.out)
    print(f'wrote {len(kept)} tensors to {args.out}')


if __name__ == '__main__':
    main()
