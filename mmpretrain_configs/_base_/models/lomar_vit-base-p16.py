# LoMaR with ViT-B/16: 4 random 7x7-patch windows per image, 80% of each
# window masked (39 of 49), all window tokens + cls through the encoder,
# iRPE on the keys (no absolute position), final norm + one linear layer,
# per-patch-normalised pixel target, MSE over masked patches.
model = dict(
    type='LoMaR',
    backbone=dict(
        type='LoMaRViT',
        arch='b',
        patch_size=16,
        window_size=7,
        num_windows=4,
        mask_ratio=0.8,
        sampling='independent',
        irpe=dict(alpha=1.9, beta=3.8, gamma=15.2),
        pos_embed='none'),
    head=dict(
        type='LoMaRHead',
        embed_dims=768,
        patch_size=16,
        norm_pix=True,
        loss=dict(type='PixelReconstructionLoss', criterion='L2')))
