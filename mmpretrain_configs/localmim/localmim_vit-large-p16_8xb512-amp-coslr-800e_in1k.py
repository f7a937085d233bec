# LocalMIM ViT-L/16 with HOG targets (18 bins, --hog_bias: a frozen random
# Sobel bias per tap), 800 epochs: the authors' recipe, batch 4096 (8 GPUs x
# 512), lr = 1.5e-4 * 4096 / 256, 40 warm-up epochs. Taps after blocks 1, 3,
# 21, 23.
_base_ = './localmim_vit-base-p16_8xb256-amp-coslr-1600e_in1k.py'

model = dict(
    backbone=dict(arch='l'),
    neck=dict(in_dims=1024, out_channels=(54, 54, 54, 54)),  # 3 x 18 bins
    target_generator=dict(nbins=18, sobel_biases=4))
train_dataloader = dict(batch_size=512)
optim_wrapper = dict(optimizer=dict(lr=1.5e-4 * 4096 / 256))

max_epochs = 800
warmup_epochs = 40
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
auto_scale_lr = dict(base_batch_size=4096)
