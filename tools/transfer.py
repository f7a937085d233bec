"""Transfer a pretrained ViT to Mask R-CNN on COCO and UperNet on ADE20K.

    python tools/transfer.py --method {lomar,localmim,mae,scratch} \
        [--checkpoint CKPT] [--pretrain-epochs N] [--tasks det seg] \
        [--gpus N] [--schedule {100e,25e}] [--tiny] [--ms-flip] \
        [--data-root DIR] [--work-dir DIR] [--dry-run]

The checkpoint's backbone weights, then for each task training and testing
with the method's config, then the results table; see ``--help``,
docs/tools.md and :mod:`mim_pretrain.apis.transfer`, where the steps live.
"""
from mim_pretrain.apis import transfer_main

if __name__ == '__main__':
    transfer_main()
