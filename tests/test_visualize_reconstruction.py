"""tools/analysis/visualize_reconstruction.py
(:func:`mim_pretrain.apis.visualize_reconstruction_main`) draws LoMaR,
LocalMIM and MAE models."""
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS

from mim_pretrain.apis import visualize_reconstruction_main

CONFIGS = {
    'LoMaR': 'mmpretrain_configs/lomar/lomar_vit-tiny-p8_1xb32-20e_'
    'synthetic.py',
    'MAE': 'mmpretrain_configs/mae/mae_vit-tiny-p8_1xb32-20e_synthetic.py',
    'LocalMIM': 'mmpretrain_configs/localmim/localmim_vit-tiny-p8_1xb32-20e_'
    'synthetic.py',
}


@pytest.mark.parametrize('kind', sorted(CONFIGS))
def test_draws_a_grid_per_image(kind, tmp_path, synthetic_data, repo_root):
    root, _ = synthetic_data
    cfg_path = osp.join(repo_root, CONFIGS[kind])
    cfg = Config.fromfile(cfg_path)
    model_cfg = cfg.model.copy()
    model_cfg['data_preprocessor'] = cfg.data_preprocessor
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(model_cfg)
    model.init_weights()
    ckpt = str(tmp_path / 'w.pth')
    torch.save({'state_dict': model.state_dict()}, ckpt)
    img = str(tmp_path / 'a.jpg')
    cv2.imwrite(img, np.random.default_rng(0).integers(
        0, 255, (70, 90, 3), dtype=np.uint8))
    out = visualize_reconstruction_main([cfg_path, ckpt, img, '--out-dir',
                                         str(tmp_path / 'vis'), '--zoom',
                                         '2'])
    drawn = cv2.imread(out[0])
    # MAE: one row of 3 panels (96 px x zoom 2 + 16 px label);
    # LoMaR: the image row, then one row per window (7 patches x 8 px)
    side = 96 * 2 + 16 + 4
    if kind == 'MAE':
        assert drawn.shape[:2] == (side, 3 * (96 * 2 + 4))
    elif kind == 'LocalMIM':
        # image row, then finest and coarsest tap rows, two panels each
        assert drawn.shape[:2] == (3 * side, 2 * (96 * 2 + 4))
    else:
        assert drawn.shape[0] == side + 4 * (7 * 8 * 2 + 16 + 4)
    with pytest.raises(SystemExit, match='image not found'):
        visualize_reconstruction_main(
            [cfg_path, ckpt, str(tmp_path / 'none.jpg')])
