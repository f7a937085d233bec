"""Transfer cost: this toolkit's ViT-B backbone against OpenMMLab anchors.

    python tools/benchmarks/transfer_speed.py [--tasks det seg]
        [--det-size 1024] [--seg-size 512] [--batch 1] [--warmup 1]
        [--repeats 2] [--device cpu|cuda] [--amp none|bf16|fp16]
        [--threads N] [--work-dir work_dirs/benchmarks]

Two detectors / segmentors per task, built from the project's transfer
config, identical except for the backbone:

* ``det``: Mask R-CNN in the ViTDet layout
  (``mmdet_configs/vitdet/mask-rcnn_vit-b-scratch_simfp_16xb4-lsj-100e_coco.py``:
  simple feature pyramid, LayerNorm heads, fixed-size padding) with this
  toolkit's ``MIMVisionTransformer`` (14 x 14 windows, global blocks 2, 5,
  8, 11, decomposed relative position, learned absolute position) against
  mmpretrain's ``ViTSAM`` in the same layout. mmdet's own ViTDet backbone
  lives in mmdet's ``projects/`` and is not part of the installed package;
  ``ViTSAM`` is the installed OpenMMLab implementation of exactly that
  backbone (SAM's image encoder is the ViTDet ViT: windowed blocks with
  global blocks 2/5/8/11 for ViT-B, decomposed relative position, absolute
  position), run without SAM's channel-reduction neck.
* ``seg``: UperNet
  (``mmseg_configs/upernet/upernet_vit-b-scratch_8xb2-amp-160k_ade20k-512x512.py``:
  Feature2Pyramid, UPerHead 768, auxiliary FCN head) with this toolkit's
  backbone (BEiT-style relative position bias, layer scale, blocks 3, 5, 7,
  11) against mmseg's ``MAE`` backbone in mmseg's own MAE-UperNet settings.

Both models of a task get the same random uint8 images (with synthetic
boxes, masks or label maps), the same AdamW and the real steps
(``train_step``: preprocessing, forward, losses, backward, update;
``test_step``: preprocessing, inference, post-processing). Training and
inference steps are timed interleaved across the two models. Writes
``transfer_speed.json`` and ``transfer_speed.md`` under ``--work-dir``.
"""
import argparse
import copy
import os
import os.path as osp
from typing import List, Optional

import torch

from . import common as bu

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))

TASKS = dict(
    det=dict(
        title='Mask R-CNN, ViT-B/16 (ViTDet layout)', scope='mmdet',
        config='mmdet_configs/vitdet/'
        'mask-rcnn_vit-b-scratch_simfp_16xb4-lsj-100e_coco.py',
        anchor='mmpretrain ViTSAM (ViTDet backbone)'),
    seg=dict(
        title='UperNet, ViT-B/16', scope='mmseg',
        config='mmseg_configs/upernet/'
        'upernet_vit-b-scratch_8xb2-amp-160k_ade20k-512x512.py',
        anchor='mmseg MAE'),
)
MMSEG_MAE_UPERNET = 'mae/mae-base_upernet_8xb2-amp-160k_ade20k-512x512.py'
OPTIMIZER = dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999),
                 weight_decay=0.05, fused=True)  # as the configs


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Mask R-CNN and UperNet step cost with this toolkit\'s '
        'ViT-B against mmpretrain ViTSAM / mmseg MAE')
    parser.add_argument('--tasks', nargs='+', default=['det', 'seg'],
                        choices=list(TASKS))
    parser.add_argument('--det-size', type=int, default=1024)
    parser.add_argument('--seg-size', type=int, default=512)
    parser.add_argument('--det-batch', type=int, default=1,
                        help='images per Mask R-CNN training step')
    parser.add_argument('--seg-batch', type=int, default=2,
                        help='images per UperNet training step (>= 2: '
                        'its pooling branch has BatchNorm on 1x1 maps)')
    parser.add_argument('--infer-batch', type=int, default=1,
                        help='images per inference step')
    bu.add_common_args(parser, repeats=2)
    parser.add_argument('--tiny', action='store_true',
                        help='smoke runs: 4-block 96-d backbones and fewer '
                        'RoIs (the figures mean nothing)')
    args = parser.parse_args(argv)
    if args.warmup < 1 or args.repeats < 1:
        parser.error('--warmup and --repeats must be >= 1')
    if min(args.det_batch, args.seg_batch, args.infer_batch, args.det_size,
           args.seg_size) < 1:
        parser.error('sizes and batches must be positive')
    if args.det_size % 32 or args.seg_size % 16:
        parser.error('--det-size must be a multiple of 32 and --seg-size '
                     'of 16')
    return args


def model_configs(task: str, size: int, tiny: bool) -> dict:
    """``ours`` and ``anchor`` model configs of a task at ``size``."""
    from mmengine.config import Config, ConfigDict
    cfg = Config.fromfile(osp.join(REPO, TASKS[task]['config']))
    # a ConfigDict: mmdet reads train_cfg/test_cfg by attribute
    ours = copy.deepcopy(cfg.model)
    bb = ours['backbone']
    bb['img_size'] = size
    if task == 'det':
        ours['data_preprocessor']['batch_augments'] = [
            dict(type='BatchFixedSizePad', size=(size, size), pad_mask=True)
        ]
        anchor_bb = dict(
            type='mmpretrain.ViTSAM', arch='base', img_size=size,
            patch_size=bb['patch_size'], out_channels=0, out_indices=-1,
            out_type='raw', use_abs_pos=True, use_rel_pos=True,
            window_size=bb['window_size'],
            drop_path_rate=bb['drop_path_rate'])
        if tiny:
            bb['arch'] = dict(embed_dims=96, depth=4, num_heads=2)
            bb['global_blocks'] = (1, 3)
            anchor_bb['arch'] = dict(embed_dims=96, num_layers=4,
                                     num_heads=2, feedforward_channels=384,
                                     global_attn_indexes=[1, 3])
            ours['neck']['in_channels'] = 96
            ours['train_cfg']['rpn_proposal']['max_per_img'] = 64
            ours['train_cfg']['rcnn']['sampler']['num'] = 16
            ours['test_cfg']['rpn']['max_per_img'] = 32
            ours['test_cfg']['rcnn']['max_per_img'] = 8
    else:
        from mmengine.hub import get_config
        mmseg_cfg = get_config('mmseg::' + MMSEG_MAE_UPERNET)
        anchor_bb = copy.deepcopy(mmseg_cfg.model.backbone.to_dict())
        anchor_bb['img_size'] = (size, size)
        ours['data_preprocessor']['size'] = (size, size)
        ours['test_cfg'] = dict(mode='slide', crop_size=(size, size),
                                stride=(size * 2 // 3, size * 2 // 3))
        if tiny:
            bb['arch'] = dict(embed_dims=96, depth=4, num_heads=2)
            bb['out_indices'] = (0, 1, 2, 3)
            anchor_bb.update(embed_dims=96, num_layers=4, num_heads=2,
                             out_indices=[0, 1, 2, 3])
            ours['neck']['embed_dim'] = 96
            ours['decode_head'].update(in_channels=[96] * 4, channels=96)
            ours['auxiliary_head'].update(in_channels=96, channels=64)
    anchor = copy.deepcopy(ours)
    anchor['backbone'] = ConfigDict(anchor_bb)
    return dict(ours=ours, anchor=anchor)


def make_data(task: str, batch: int, size: int, device: torch.device,
              train: bool, seed: int) -> dict:
    """Random uint8 images with synthetic annotations, as collated."""
    gen = torch.Generator().manual_seed(seed)
    inputs = [torch.randint(0, 256, (3, size, size), dtype=torch.uint8,
                            generator=gen).to(device) for _ in range(batch)]
    meta = dict(img_shape=(size, size), ori_shape=(size, size),
                pad_shape=(size, size), scale_factor=(1., 1.))
    samples = []
    for _ in range(batch):
        if task == 'det':
            import numpy as np
            from mmdet.structures import DetDataSample
            from mmdet.structures.mask import BitmapMasks
            from mmengine.structures import InstanceData
            sample = DetDataSample(metainfo=meta)
            if train:
                n = 8
                xy = torch.rand(n, 2, generator=gen) * size * 0.7
                wh = (torch.rand(n, 2, generator=gen) * 0.25 + 0.05) * size
                boxes = torch.cat([xy, xy + wh], 1).clamp(max=size - 1)
                masks = np.zeros((n, size, size), dtype=np.uint8)
                for i, (x0, y0, x1, y1) in enumerate(boxes.long().tolist()):
                    masks[i, y0:y1, x0:x1] = 1
                sample.gt_instances = InstanceData(
                    bboxes=boxes.to(device),
                    labels=torch.randint(0, 80, (n, ), generator=gen).to(
                        device),
                    masks=BitmapMasks(masks, size, size))
        else:
            from mmengine.structures import PixelData
            from mmseg.structures import SegDataSample
            sample = SegDataSample(metainfo=meta)
            if train:
                sample.gt_sem_seg = PixelData(data=torch.randint(
                    0, 150, (1, size, size), generator=gen).to(device))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


class Model:
    """One detector/segmentor: built, its optimizer, train and test data."""

    def __init__(self, task: str, role: str, cfg: dict, size: int,
                 device: torch.device, args) -> None:
        from mmengine.model import revert_sync_batchnorm
        from mmengine.optim import build_optim_wrapper
        from mmengine.registry import MODELS
        self.task, self.role = task, role
        memory = bu.PeakMemory(device)
        memory.start()
        torch.manual_seed(args.seed)
        # mmengine's runner turns SyncBN into BN when not distributed
        model = revert_sync_batchnorm(MODELS.build(copy.deepcopy(cfg)))
        model.init_weights()
        self.model = model.to(device).train()
        self.optim_wrapper = build_optim_wrapper(
            self.model, bu.optim_wrapper_cfg(OPTIMIZER, args.amp))
        self.batch = args.det_batch if task == 'det' else args.seg_batch
        self.train_data = make_data(task, self.batch, size, device, True,
                                    args.seed)
        self.test_data = make_data(task, args.infer_batch, size, device,
                                   False, args.seed)
        self.device, self.amp = device, args.amp
        for _ in range(args.warmup):
            self.train()
        bu.synchronize(device)
        self.train_peak = memory.peak_mib()
        memory.start()
        for _ in range(args.warmup):
            self.infer()
        bu.synchronize(device)
        self.infer_peak = memory.peak_mib()
        self.record = dict(
            role=role, backbone=cfg['backbone']['type'],
            params_m=sum(p.numel()
                         for p in self.model.parameters()) / 1e6,
            backbone_params_m=sum(
                p.numel() for p in self.model.backbone.parameters()) / 1e6,
            train_peak_mem_mib=self.train_peak,
            infer_peak_mem_mib=self.infer_peak, mem_method=memory.method)

    def train(self) -> None:
        self.model.train()
        self.model.train_step(self.train_data, self.optim_wrapper)

    def infer(self) -> None:
        self.model.eval()
        with torch.no_grad(), bu.autocast(self.device, self.amp):
            self.model.test_step(self.test_data)

    def count_flops(self) -> dict:
        """Counted FLOPs per image: training step (fwd + bwd) and
        inference."""
        self.model.train()
        with bu.flop_counter_mode() as counter:
            with self.optim_wrapper.optim_context(self.model):
                data = self.model.data_preprocessor(self.train_data, True)
                losses = self.model(**data, mode='loss')
            loss, _ = self.model.parse_losses(losses)
            loss.backward()
        train = counter.get_total_flops()
        self.optim_wrapper.zero_grad()
        with bu.flop_counter_mode() as counter:
            self.infer()
        infer = counter.get_total_flops()
        return dict(
            gflops_train_per_image=train / len(self.train_data['inputs']) /
            1e9,
            gflops_infer_per_image=infer / len(self.test_data['inputs']) /
            1e9)


def run_task(task: str, size: int, device: torch.device, args) -> dict:
    cfgs = model_configs(task, size, args.tiny)
    models = [Model(task, role, cfgs[role], size, device, args)
              for role in ('ours', 'anchor')]
    train = bu.time_interleaved([m.train for m in models], device,
                                args.repeats)
    infer = bu.time_interleaved([m.infer for m in models], device,
                                args.repeats)
    peak_tf = bu.peak_tflops(device, args.peak_tflops)
    out = dict(task=task, title=TASKS[task]['title'],
               config=TASKS[task]['config'], anchor=TASKS[task]['anchor'],
               size=size, batch=models[0].batch,
               infer_batch=args.infer_batch,
               models=[])
    for m, t, i in zip(models, train, infer):
        rec = dict(m.record, train=t, infer=i,
                   train_images_per_s=m.batch / t['median_s'],
                   infer_images_per_s=args.infer_batch / i['median_s'])
        if not args.no_flops:
            rec.update(m.count_flops())
            rec['train_tflops'] = (rec['gflops_train_per_image'] *
                                   rec['train_images_per_s'] / 1e3)
            rec['infer_tflops'] = (rec['gflops_infer_per_image'] *
                                   rec['infer_images_per_s'] / 1e3)
            rec['train_mfu'] = (rec['train_tflops'] / peak_tf
                                if peak_tf else None)
            rec['infer_mfu'] = (rec['infer_tflops'] / peak_tf
                                if peak_tf else None)
        out['models'].append(rec)
    ours, anchor = out['models']
    out['train_time_ratio'] = (ours['train']['median_s'] /
                               anchor['train']['median_s'])
    out['infer_time_ratio'] = (ours['infer']['median_s'] /
                               anchor['infer']['median_s'])
    out['train_cpu_time_ratio'] = (ours['train']['cpu_median_s'] /
                                   anchor['train']['cpu_median_s'])
    out['infer_cpu_time_ratio'] = (ours['infer']['cpu_median_s'] /
                                   anchor['infer']['cpu_median_s'])
    out['met'] = dict(train=out['train_time_ratio'] <= 1.0,
                      infer=out['infer_time_ratio'] <= 1.0)
    del models
    bu.release_memory(device)
    return out


def write_markdown(path: str, result: dict) -> None:
    args = result['args']
    lines = ['# Transfer step cost', '',
             f"Machine: {bu.machine_line(result['machine'])}. Autocast "
             f"{args['amp']}, median of {args['repeats']} steps "
             f"(interleaved) after {args['warmup']} warm-up.", '']
    for t in result['tasks']:
        rows = []
        for m in t['models']:
            mfu = m.get('train_mfu')
            rows.append([
                m['role'] + ': ' + m['backbone'], m['backbone_params_m'],
                1e3 * m['train']['median_s'],
                1e3 * m['train']['cpu_median_s'], m['train_images_per_s'],
                m['train_peak_mem_mib'], 1e3 * m['infer']['median_s'],
                1e3 * m['infer']['cpu_median_s'], m['infer_images_per_s'],
                m['infer_peak_mem_mib'],
                m.get('gflops_train_per_image'),
                m.get('gflops_infer_per_image'),
                None if mfu is None else f'{100 * mfu:.1f}%'
            ])
        lines += [
            f"## {t['title']} at {t['size']} px (train batch {t['batch']}, "
            f"inference batch {t['infer_batch']})", '',
            f"Config `{t['config']}`; anchor: {t['anchor']}.", '',
            bu.markdown_table([
                'backbone', 'backbone M params', 'train ms', 'train CPU ms',
                'train img/s', 'train peak MiB', 'infer ms', 'infer CPU ms',
                'infer img/s', 'infer peak MiB', 'train GFLOPs/img',
                'infer GFLOPs/img', 'train MFU'
            ], rows), '', bu.FLOP_CONVENTION, '',
            f"ours / anchor: training step {t['train_time_ratio']:.3f} "
            f"(CPU time {t['train_cpu_time_ratio']:.3f}), inference "
            f"{t['infer_time_ratio']:.3f} (CPU time "
            f"{t['infer_cpu_time_ratio']:.3f}); target <= 1: training "
            f"{'met' if t['met']['train'] else 'missed'}, inference "
            f"{'met' if t['met']['infer'] else 'missed'}.", ''
        ]
    with open(path, 'w') as f:
        f.write('\n'.join(lines))


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    device = bu.resolve_device(args)
    import mim_pretrain  # noqa: F401  registers the backbones
    bu.quiet_logs('transfer_speed')
    bu.steady_cpu_allocator(device)
    os.makedirs(args.work_dir, exist_ok=True)
    machine = bu.machine_record(device)
    if args.threads:  # set for each task's run (common.run_context)
        machine['threads'] = args.threads
    tasks = []
    for task in args.tasks:
        size = args.det_size if task == 'det' else args.seg_size
        with bu.run_context(args.threads, TASKS[task]['scope']):
            t = run_task(task, size, device, args)
        tasks.append(t)
        for m in t['models']:
            print(f"{task} {size}px {m['role']:>6} ({m['backbone']}): "
                  f"train {1e3 * m['train']['median_s']:9.1f} ms "
                  f"({m['train_images_per_s']:.2f} img/s), infer "
                  f"{1e3 * m['infer']['median_s']:9.1f} ms "
                  f"({m['infer_images_per_s']:.2f} img/s)", flush=True)
        print(f"{task}: ours/anchor train {t['train_time_ratio']:.3f}, "
              f"infer {t['infer_time_ratio']:.3f}", flush=True)
    machine['loadavg_end'] = list(os.getloadavg())
    result = dict(machine=machine, args=vars(args), tasks=tasks)
    base = osp.join(args.work_dir, 'transfer_speed')
    bu.write_json(base + '.json', result)
    write_markdown(base + '.md', result)
    print(f'wrote {base}.json, .md')
    return result


if __name__ == '__main__':
    main()
