# What the tiny built-in classification runs (tests, demos) share: the
# built-in 96-px images in the ImageNet layout (tools/data/generate_data.py:
# train/ + meta/train.txt, val/ + meta/val.txt; at most 6 classes), batch
# 32, 10 epochs (1 linear warm-up epoch, then the full config's cosine), a
# validation and a checkpoint every 5 epochs, a log line every 4 iterations,
# fp32 (CPU). A tiny config keeps its full-size config's optimizer, lr and
# augmentation and changes only sizes, schedule and precision.
#
# Everything is under one key, `synthetic_classification`: a tiny config
# inherits its full-size config and this file side by side, and mmengine
# refuses a key that two sibling bases both define, so a tiny config assigns
# each entry itself, e.g.
#     train_cfg = _base_.synthetic_classification.train_cfg
synthetic_classification = dict(
    img_size=96,
    # the resize-then-crop test of the full configs, 256 -> 224, at 96 px
    test_resize=110,
    num_classes=6,
    # the class folders of data/imagenet (the ImageNet dataset would name
    # ImageNet's 1000 classes, and checkpoints and inference would carry them)
    classes=('n00000000', 'n00000001', 'n00000002', 'n00000003', 'n00000004',
             'n00000005'),
    batch_size=32,
    warmup_epochs=1,
    train_cfg=dict(max_epochs=10, val_interval=5),
    default_hooks=dict(
        logger=dict(interval=4),
        checkpoint=dict(interval=5, max_keep_ckpts=2)),
    auto_scale_lr=dict(base_batch_size=32))
