"""Convert a published ViT or Swin checkpoint to this toolkit's layout.

    python tools/model_converters/convert_checkpoint.py SRC DST \
        --format {lomar,localmim,localmim-swin,mae,mmpretrain-vit}

* lomar: the LoMaR authors' checkpoint -> a LoMaR state dict (backbone + head)
  for this toolkit's LoMaR configs and, with prefix 'backbone.', the transfer
  backbone (pos_embed='none', irpe=dict());
* localmim: the LocalMIM authors' ViT checkpoint -> backbone.* (final norm,
  tap norms, stored position embedding; decoders dropped);
* localmim-swin: the LocalMIM authors' Swin checkpoint (encoder.*) ->
  backbone.* in the layout of mmdet's, mmseg's and mmpretrain's
  SwinTransformer (patch-merging weights permuted to nn.Unfold's order);
* mae: the MAE authors' checkpoint -> backbone.* (decoder dropped);
* mmpretrain-vit: an mmpretrain ViT/MAE checkpoint -> this toolkit's names
  (the transfer backbone also maps these on the fly when loading).

The output is {'state_dict': ..., 'meta': ...}, loadable with
init_cfg=dict(type='Pretrained', checkpoint=DST, prefix='backbone.').
"""
import argparse
import os.path as osp

import torch

from mim_pretrain.converters import CONVERTERS, read_state_dict


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Convert a published ViT or Swin checkpoint to this '
        'toolkit\'s layout.')
    parser.add_argument('src', help='the published checkpoint')
    parser.add_argument('dst', help='where to write the converted weights')
    parser.add_argument('--format', required=True, choices=sorted(CONVERTERS),
                        help='the layout of SRC')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    state, _ = read_state_dict(args.src)
    if args.format == 'mmpretrain-vit':
        state = {k[len('backbone.'):]: v for k, v in state.items()
                 if k.startswith('backbone.')} or state
    converted, dropped = CONVERTERS[args.format](state)
    if args.format == 'mmpretrain-vit':
        converted = {'backbone.' + k: v for k, v in converted.items()}
    if not converted:
        raise SystemExit(f'{args.src}: no key of the {args.format!r} layout '
                         f'found (first keys: {sorted(state)[:5]})')
    torch.save({'state_dict': converted,
                'meta': {'converted_from': osp.basename(args.src),
                         'format': args.format}}, args.dst)
    print(f'wrote {len(converted)} tensors to {args.dst}; dropped '
          f'{len(dropped)} source keys'
          + (f': {sorted(dropped)[:8]}' + (' ...' if len(dropped) > 8
                                           else '') if dropped else ''))
    return converted, dropped


if __name__ == '__main__':
    main()
