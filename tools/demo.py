"""Draw the predictions of a model on images.

    python tools/demo.py CONFIG CHECKPOINT IMAGE [IMAGE ...] \
        [--out-dir outputs] [--device cpu] [--score-thr 0.3]

Detections for mmdet configs, segmentations for mmseg configs and
reconstructions for pretraining configs, one drawing per image in
``OUT_DIR/vis/``; the checkpoint may be a training checkpoint or an
extracted weights file. The work is :func:`mim_pretrain.apis.demo_main`
(:mod:`mim_pretrain.apis.inference`); see docs/inference.md.
"""
from mim_pretrain.apis import demo_main

if __name__ == '__main__':
    demo_main()
