# LoMaR ViT-B/16, 1600 epochs (the schedule of the released checkpoint);
# everything else as the 400-epoch config (20 warm-up epochs).
_base_ = './lomar_vit-base-p16_4xb256-accum4-amp-coslr-400e_in1k.py'

max_epochs = 1600
warmup_epochs = 20
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
        eta_min=0.,
        by_epoch=True,
        begin=warmup_epochs,
        end=max_epochs,
        convert_to_iter_based=True)
]
train_cfg = dict(max_epochs=max_epochs)
