"""Extract the weights of a full training checkpoint into a plain file.

A checkpoint written by mmengine's CheckpointHook also pickles the optimizer,
the message hub and other objects, so PyTorch's safe ``weights_only`` loader
refuses it as pretrained weights. This tool loads it once, in full (you name
the file, so you vouch for it), and writes ``{'state_dict': ..., 'meta':
...}`` with tensors only, which loads anywhere with ``weights_only=True``.

    python tools/model_converters/extract_weights.py CKPT OUT \
        [--prefix backbone.] [--strip-prefix]

The work is :func:`mim_pretrain.apis.extract_weights`, the command line
:func:`mim_pretrain.apis.extract_weights_main`.
"""
from mim_pretrain.apis import extract_weights_main

if __name__ == '__main__':
    extract_weights_main()
