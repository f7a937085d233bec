# ImageNet-1k fine-tuning of LocalMIM ViT-B/16, the LocalMIM authors' recipe
# for their 1600-epoch model (Haoqing-Wang/LocalMIM ViT/README.md and
# ViT/run_finetune.py): 100 epochs, batch 1024 = 8 GPUs x 128, AdamW lr 2e-3
# (absolute), betas (0.9, 0.999), weight decay 0.05, layer decay 0.65, 20
# warm-up epochs then cosine to 1e-5, drop path 0.1, RandAugment
# (rand-m9-mstd0.5-inc1), random erasing 0.25, Mixup 0.8 / CutMix 1.0, label
# smoothing 0.1, AMP, mean-pooled patch tokens through a new fc_norm, 224 px.
# Their fine-tuning ViT learns its absolute position table, started from the
# fixed 2-D sin-cos of pretraining (stored in their checkpoints; this
# toolkit's LocalMIM checkpoints store none, so pos_embed_init='sincos'
# writes the same table).
# For a 100-epoch pretrained model the authors use lr 4e-3, layer decay 0.75
# and a final lr of 1e-6:
#   --cfg-options optim_wrapper.optimizer.lr=4e-3 \
#       optim_wrapper.paramwise_cfg.layer_decay_rate=0.75 \
#       param_scheduler.1.eta_min=1e-6
# This is the MAE fine-tuning config
# (../../mae/benchmarks/mae_vit-base-p16_ft-8xb128-amp-coslr-100e_in1k.py,
# the recipe the authors' script derives from) with their warm-up, final lr,
# position and checkpoint.
_base_ = ('../../mae/benchmarks/'
          'mae_vit-base-p16_ft-8xb128-amp-coslr-100e_in1k.py')

model = dict(
    backbone=dict(
        pos_embed='learned',
        pos_embed_init='sincos',
        pretrain_img_size=224,
        init_cfg=dict(
            checkpoint='pretrain/localmim_vit-base-p16_backbone.pth')))

max_epochs = 100
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
        by_epoch=True,
        begin=warmup_epochs,
        end=max_epochs,
        eta_min=1e-5,
        convert_to_iter_based=True)
]
