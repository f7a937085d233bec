"""mmdet's Mask R-CNN and mmseg's UperNet run through tools/train.py and
tools/test.py on the built-in data, scored by the real evaluators."""
import glob
import os.path as osp
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import det_data_options, seg_data_options

DET_CFG = 'mmdet_configs/stack_check/mask-rcnn_r18_fpn_2e_synthetic.py'
SEG_CFG = 'mmseg_configs/stack_check/upernet_r18_200i_synthetic.py'


def _run(args, cwd):
    res = subprocess.run([sys.executable, *args], cwd=cwd,
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, (res.stdout[-2000:], res.stderr[-3000:])
    return res


def test_coco_metric_scores_ground_truth_as_perfect(synthetic_data):
    """CocoMetric on predictions equal to the annotations gives AP 1."""
    from mmdet.evaluation import CocoMetric
    from pycocotools.coco import COCO
    root, _ = synthetic_data
    ann_file = osp.join(root, 'coco', 'annotations',
                        'instances_val2017.json')
    coco = COCO(ann_file)
    metric = CocoMetric(ann_file=ann_file, metric=['bbox', 'segm'])
    cat_ids = sorted(coco.getCatIds())
    metric.dataset_meta = dict(
        classes=[coco.cats[i]['name'] for i in cat_ids])
    for img_id in coco.getImgIds():
        info = coco.imgs[img_id]
        anns = [a for a in coco.loadAnns(coco.getAnnIds(imgIds=img_id))
                if not a['iscrowd']]
        boxes = [[x, y, x + w, y + h] for x, y, w, h in
                 (a['bbox'] for a in anns)]
        pred = dict(
            bboxes=torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
            scores=torch.ones(len(anns)),
            labels=torch.tensor([cat_ids.index(a['category_id'])
                                 for a in anns], dtype=torch.long),
            masks=torch.from_numpy(
                np.stack([coco.annToMask(a) for a in anns]).astype(bool)
                if anns else np.zeros((0, info['height'], info['width']),
                                      bool)))
        metric.process({}, [dict(img_id=img_id, pred_instances=pred,
                                 ori_shape=(info['height'], info['width']))])
    results = metric.compute_metrics(metric.results)
    assert results['bbox_mAP'] == pytest.approx(1.0)
    assert results['segm_mAP'] == pytest.approx(1.0)


def test_iou_metric_scores_ground_truth_as_perfect(synthetic_data):
    from mmengine.registry import DefaultScope
    from mmengine.structures import PixelData
    from mmseg.datasets import ADE20KDataset
    from mmseg.evaluation import IoUMetric
    from mmseg.structures import SegDataSample

    from mim_pretrain.datasets import ADE_CLASS_NAMES
    root, _ = synthetic_data
    with DefaultScope.overwrite_default_scope('mmseg'):
        ds = ADE20KDataset(
            data_root=osp.join(root, 'ade', 'ADEChallengeData2016'),
            data_prefix=dict(img_path='images/validation',
                             seg_map_path='annotations/validation'),
            metainfo=dict(classes=ADE_CLASS_NAMES),
            pipeline=[dict(type='LoadAnnotations')])
    metric = IoUMetric(iou_metrics=['mIoU'])
    metric.dataset_meta = ds.metainfo
    for i in range(len(ds)):
        gt = torch.from_numpy(ds[i]['gt_seg_map'].astype(np.int64))[None]
        sample = SegDataSample()
        sample.pred_sem_seg = PixelData(data=gt.clone())
        sample.gt_sem_seg = PixelData(data=gt)
        metric.process({}, [sample.to_dict()])
    results = metric.compute_metrics(metric.results)
    assert results['mIoU'] == pytest.approx(100.0)


@pytest.mark.slow
def test_mask_rcnn_train_then_test(tmp_path, synthetic_data, repo_root):
    root, _ = synthetic_data
    work = str(tmp_path / 'det')
    data = det_data_options(root)
    _run(['tools/train.py', DET_CFG, '--work-dir', work, '--cfg-options',
          'train_cfg.max_epochs=1', 'train_cfg.val_interval=1', *data],
         repo_root)
    ckpt = osp.join(work, 'epoch_1.pth')
    out = str(tmp_path / 'det.pkl')
    res = _run(['tools/test.py', DET_CFG, ckpt, '--work-dir', work, '--out',
                out, '--show-dir', 'vis', '--cfg-options', *data], repo_root)
    # the numbers come from CocoMetric (pycocotools) for boxes and masks
    assert 'coco/bbox_mAP:' in res.stdout and 'coco/segm_mAP:' in res.stdout
    assert 'Evaluate annotation type *segm*' in res.stdout
    with open(out, 'rb') as f:
        preds = pickle.load(f)
    assert len(preds) == 4 and 'pred_instances' in preds[0]
    assert len(glob.glob(osp.join(work, '*', 'vis', '*.jpg'))) == 4


@pytest.mark.slow
def test_upernet_train_then_test(tmp_path, synthetic_data, repo_root):
    root, _ = synthetic_data
    work = str(tmp_path / 'seg')
    data = seg_data_options(root)
    _run(['tools/train.py', SEG_CFG, '--work-dir', work, '--cfg-options',
          'train_cfg.max_iters=6', 'train_cfg.val_interval=6',
          'default_hooks.checkpoint.interval=6', *data], repo_root)
    ckpt = osp.join(work, 'iter_6.pth')
    out = str(tmp_path / 'seg_png')
    res = _run(['tools/test.py', SEG_CFG, ckpt, '--work-dir', work, '--out',
                out, '--cfg-options', *data], repo_root)
    assert 'mIoU:' in res.stdout and 'per class results' in res.stdout
    # --out keeps the PNG predictions, one per validation image
    assert len(glob.glob(osp.join(out, '*.png'))) == 4
