# LocalMIM with Swin-B (patch 4, window 7): the mask is drawn on the 7x7 grid
# of 32x32-px units (37 of 49 masked, one mask for the whole batch, as the
# authors), masked tokens are dropped inside the encoder ('efficient' mode,
# GreenMIM-style grouped window attention), and every stage is tapped after
# its patch merging (strides 8/16/32/32, 256/512/1024/1024 channels at 224)
# with its own LayerNorm and a one-block decoder (64/128/128/128-d, 4 heads,
# the authors' decoder_embed_dim 128 halved for the first stage) with a
# linear head; HOG targets (18 bins and a frozen random Sobel bias per stage:
# the authors' Swin-B HOG command, --hog_nbins 18 --hog_bias) over
# 8/16/32/32-px cells, masked MSE per stage, summed with equal weights.
# geometry='authors': the windows of stages 1 and 2 are placed as the
# authors' released code places them (docs/localmim.md, "Window geometry":
# the published numbers come from it); 'swin' gives true Swin windows.
# LayerNorm eps 1e-6, as the authors.
model = dict(
    type='LocalMIMSwin',
    backbone=dict(
        type='LocalMIMSwinTransformer',
        arch='base',
        patch_size=4,
        window_size=7,
        mode='efficient',
        mask_ratio=0.75,
        mask_per_sample=False,
        geometry='authors',
        norm_eps=1e-6,
        drop_path_rate=0.),
    neck=dict(
        type='LocalMIMDecoders',
        in_dims=(256, 512, 1024, 1024),
        scales=(1., 1., 1., 1.),
        # per cell: HOG's 3 channels x 18 bins
        out_channels=(54, 54, 54, 54),
        dims=(64, 128, 128, 128),
        num_heads=4,
        with_cls=False),
    head=dict(type='LocalMIMHead', loss_weights=(1., 1., 1., 1.)),
    target_generator=dict(type='HOGTarget', nbins=18, sobel_biases=4))
