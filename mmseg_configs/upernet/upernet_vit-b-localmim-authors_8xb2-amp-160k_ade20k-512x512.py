# UperNet on ADE20K at 512 x 512 for 160k iterations with ViT-B/16 from
# LocalMIM, the LocalMIM authors' protocol (Haoqing-Wang/LocalMIM,
# semantic_segmentation/: configs/upernet_vit_base_12_512_slide_160k_ade20k.py,
# backbone/vit.py, mmcv_custom/layer_decay_optimizer_constructor.py and
# checkpoint.py, train.py): the raw outputs of blocks [1, 3, 9, 11] (no
# LayerNorm), turned into a pyramid by 2 transposed convs with SyncBN + GELU
# (4x), 1 transposed conv (2x), identity and 2 x 2 average pooling (0.5x);
# a learned absolute position that starts from the pretraining sin-cos of
# the 14 x 14 grid (cls position 0), resized bicubically to 32 x 32 on load;
# a new BEiT-style relative position bias per block (zero-initialised),
# layer scale 1.0, drop path 0.1, LayerNorm eps 1e-6; UPerHead with 768
# channels + auxiliary FCN head; AdamW lr 4e-4, betas (0.9, 0.999), weight
# decay 0.05 on everything but 1-D parameters and biases (their
# constructor's pos_embed / cls_token check never matches the prefixed
# names), layer decay 0.65; poly decay (power 1) over all 160k iterations,
# scaled by a linear warm-up from 1e-6 over the first 1500 (mmcv 0.x's
# warmup='linear' on the poly policy); float16 mixed precision; seed 0;
# total batch 16 (8 GPUs x 2); sliding-window test (512, stride 341),
# IoUMetric mIoU.
# Departs from the authors' code in: mmseg 1.x in place of their mmseg
# 0.11 fork (the same ADE20K pipeline and heads; PyTorch's autocast with a
# dynamic loss scale in place of apex); no `deterministic` run (their
# --deterministic only set cuDNN's flags; mmengine's also calls
# torch.use_deterministic_algorithms, under which CUDA ops without a
# deterministic kernel raise); the exact-resume loop, FiniteLossHook and
# checked image loading of this repository.
# The checkpoint: this toolkit's LocalMIM run (extract_weights.py, no
# pos_embed stored: pos_embed_init='sincos' computes it) or the authors'
# converted with convert_checkpoint.py --format localmim (their stored
# sin-cos pos_embed loads). See docs/model_zoo.md.
_base_ = [
    '../_base_/models/upernet_vit-b.py', '../_base_/datasets/ade20k_8xb2.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/upernet_vit_160k.py'
]

custom_imports = dict(imports=['mim_pretrain'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        pos_embed='learned',
        pos_embed_init='sincos',
        pretrain_img_size=224,
        out_indices=(1, 3, 9, 11),
        tap_norms=False,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='pretrain/localmim_vit-base-p16_backbone.pth',
            prefix='backbone.')),
    neck=dict(type='Feature2PyramidPool', pool='avg'))
optim_wrapper = dict(optimizer=dict(lr=4e-4))
# mmcv 0.x's lr at iteration i: base * (1 - i / 160000), times
# 1e-6 + (1 - 1e-6) * i / 1500 while i < 1500. mmengine's schedulers reach
# their end value one step before `end`, hence the + 1s: the same values.
param_scheduler = [
    dict(
        type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0,
        end=1500 + 1),
    dict(
        type='PolyLR',
        eta_min=0.0,
        power=1.0,
        begin=0,
        end=_base_.max_iters + 1,
        by_epoch=False)
]
randomness = dict(seed=0)
