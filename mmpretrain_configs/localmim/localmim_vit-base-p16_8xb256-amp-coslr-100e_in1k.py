# LocalMIM ViT-B/16 with HOG targets, the authors' 100-epoch recipe
# (10 warm-up epochs); everything else as the 1600-epoch config.
_base_ = './localmim_vit-base-p16_8xb256-amp-coslr-1600e_in1k.py'

max_epochs = 100
warmup_epochs = 10
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-4,
        by_epoch=True,
        begin=0,
        end=warmup_epochs,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        T_max=max_epochs - warmup_epochs,
        eta_min=1e-6,  # the authors' min_lr
        by_epoch=True,
        begin=warmup_epochs,
        end=max_epochs,
        convert_to_iter_based=True)
]
train_cfg = dict(max_epochs=max_epochs)
