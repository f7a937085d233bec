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
init_cfg=dict(type='Pretrained', checkpoint=DST, prefix='backbone.'). The
work is :func:`mim_pretrain.apis.convert_checkpoint_main`.
"""
from mim_pretrain.apis import convert_checkpoint_main

if __name__ == '__main__':
    convert_checkpoint_main()
