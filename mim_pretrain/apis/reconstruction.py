"""Draw what a pretrained model reconstructs, one PNG grid per image: the
work of ``tools/analysis/visualize_reconstruction.py``.

    python tools/analysis/visualize_reconstruction.py CONFIG CHECKPOINT \
        IMAGE [IMAGE ...] [--out-dir DIR] [--seed 0] [--size S] [--zoom 3]

Works for LoMaR, LocalMIM and mmpretrain's MAE checkpoints. For LoMaR the
grid shows the image with its sampled windows (boxes), then one row per
window: the masked window as the encoder sees it, the reconstruction (visible
patches kept, masked ones predicted) and the original window. For MAE:
original, masked input, reconstruction. For LocalMIM: the image and the
masked input, then the target and the prediction of the finest and of the
coarsest tap (HOG drawn as orientation glyphs per cell, pixels as images).
Predictions of normalised-pixel targets are mapped back to pixels with each
patch's true mean and variance, as the MAE authors' visualisation does.
"""
import argparse
import os
import os.path as osp
from typing import Callable, Dict, List, Optional

import cv2
import numpy as np
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.runner import load_checkpoint

from .. import compat
from ..models.utils import patchify, unpatchify

Rows = List[List[np.ndarray]]

COLOURS = [(230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48),
           (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60)]


def build_reconstruction_parser() -> argparse.ArgumentParser:
    """Command-line parser of ``tools/analysis/visualize_reconstruction.py``.

    Returns:
        argparse.ArgumentParser: ``CONFIG CHECKPOINT IMAGE [IMAGE ...]
        [--out-dir DIR] [--size S] [--seed N] [--zoom Z] [--device D]``.
    """
    parser = argparse.ArgumentParser(
        description='Write reconstruction grids of a pretrained model.')
    parser.add_argument('config', help='the pretraining config')
    parser.add_argument('checkpoint', help='the checkpoint')
    parser.add_argument('images', nargs='+', help='image files')
    parser.add_argument('--out-dir', default='vis_reconstruction',
                        help='where the PNGs go')
    parser.add_argument('--size', type=int, default=None,
                        help='input side (default: the training crop size)')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the windows and masks')
    parser.add_argument('--zoom', type=int, default=3,
                        help='integer upscaling of the drawings')
    parser.add_argument('--device', default='cpu', help='torch device')
    return parser


def _train_size(cfg: Config) -> int:
    """The crop side of the training pipeline's ``RandomResizedCrop``."""
    for t in cfg.train_dataloader.dataset.get('pipeline', []):
        if t.get('type') == 'RandomResizedCrop':
            scale = t['scale']
            return scale if isinstance(scale, int) else scale[0]
    raise ValueError(f'{cfg.filename}: no RandomResizedCrop in the training '
                     'pipeline; give --size')


def build_model(cfg: Config, checkpoint: str,
                device: str) -> torch.nn.Module:
    """The pretraining model of a config with a checkpoint loaded.

    Args:
        cfg: The pretraining config.
        checkpoint: The checkpoint, loaded strictly (named on the command
            line, so trusted in full).
        device: The torch device to put the model on.

    Returns:
        torch.nn.Module: The model, in eval mode.
    """
    import mmpretrain.models  # noqa: F401  (registers mmpretrain's modules)
    from mmpretrain.registry import MODELS
    model_cfg = cfg.model.copy()
    if 'data_preprocessor' not in model_cfg and cfg.get('data_preprocessor'):
        model_cfg['data_preprocessor'] = cfg.data_preprocessor
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(model_cfg)
    compat.trust_checkpoint(checkpoint, 'named on the command line')
    load_checkpoint(model, checkpoint, map_location='cpu', strict=True)
    return model.to(device).eval()


def _to_pixels(patches: torch.Tensor, target_raw: torch.Tensor,
               norm_pix: bool) -> torch.Tensor:
    """Undo per-patch normalisation using the true patches' statistics."""
    if not norm_pix:
        return patches
    mean = target_raw.mean(dim=-1, keepdim=True)
    std = (target_raw.var(dim=-1, keepdim=True) + 1e-6)**.5
    return patches * std + mean


def _rgb(img: torch.Tensor, mean: torch.Tensor, std: torch.Tensor,
         zoom: int) -> np.ndarray:
    """Normalised CHW tensor -> uint8 HWC RGB, upscaled."""
    x = (img * std[:, None, None] + mean[:, None, None]).clamp(0, 255)
    x = x.permute(1, 2, 0).byte().cpu().numpy()
    return cv2.resize(x, None, fx=zoom, fy=zoom,
                      interpolation=cv2.INTER_NEAREST)


def _label(img: np.ndarray, text: str) -> np.ndarray:
    """``img`` under a white bar with ``text``."""
    bar = np.full((16, img.shape[1], 3), 255, np.uint8)
    cv2.putText(bar, text, (2, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([bar, img], 0)


def _grid(rows: Rows) -> np.ndarray:
    """Rows of images on a white canvas, each row as tall as its tallest."""
    heights = [max(im.shape[0] for im in row) + 4 for row in rows]
    width = max(sum(im.shape[1] + 4 for im in row) for row in rows)
    canvas = np.full((sum(heights), width, 3), 255, np.uint8)
    y = 0
    for row, h in zip(rows, heights):
        x = 0
        for im in row:
            canvas[y:y + im.shape[0], x:x + im.shape[1]] = im
            x += im.shape[1] + 4
        y += h
    return canvas


def lomar_grid(model: torch.nn.Module, x: torch.Tensor, mean: torch.Tensor,
               std: torch.Tensor, zoom: int) -> Rows:
    """Rows of drawings for one LoMaR image.

    Args:
        model: The LoMaR model.
        x: The normalised image, ``[1, C, H, W]``.
        mean: The per-channel mean of the normalisation.
        std: The per-channel std of the normalisation.
        zoom: The integer upscaling of the drawings.

    Returns:
        list: The image and its windows, then a row per window (input,
        reconstruction, original).
    """
    out = model.reconstruct(x)
    p = model.backbone.patch_size
    ws = model.backbone.window_size
    _, c, h, w = x.shape
    grid = (h // p, w // p)
    raw = patchify(x, p)[0]  # L, D
    img = _rgb(x[0], mean, std, zoom)
    overlay = img.copy()
    rows = []
    for k, (index, mask, pred) in enumerate(
            zip(out['patch_index'][0], out['mask'][0], out['pred'][0])):
        colour = COLOURS[k % len(COLOURS)]
        target = raw[index]
        pixels = _to_pixels(pred, target, model.head.norm_pix)
        shown = torch.where(mask[:, None], torch.zeros_like(target), target)
        recon = torch.where(mask[:, None], pixels, target)
        tiles = [unpatchify(t[None], p, (ws, ws), c)[0]
                 for t in (shown, recon, target)]
        drawn = [_rgb(t, mean, std, zoom) for t in tiles]
        for m_idx in torch.nonzero(mask).flatten().tolist():
            r, cc = divmod(m_idx, ws)
            y0, x0 = r * p * zoom, cc * p * zoom
            drawn[0][y0:y0 + p * zoom, x0:x0 + p * zoom] = 128
        rows.append([_label(drawn[0], f'window {k}: input'),
                     _label(drawn[1], 'reconstruction'),
                     _label(drawn[2], 'original')])
        r0, c0 = divmod(int(index[0]), grid[1])
        cv2.rectangle(overlay, (c0 * p * zoom, r0 * p * zoom),
                      ((c0 + ws) * p * zoom - 1, (r0 + ws) * p * zoom - 1),
                      colour, 2)
    return [[_label(img, 'image'), _label(overlay, 'windows')]] + rows


def mae_grid(model: torch.nn.Module, x: torch.Tensor, mean: torch.Tensor,
             std: torch.Tensor, zoom: int) -> Rows:
    """Rows of drawings for one image of mmpretrain's MAE.

    Args are those of :func:`lomar_grid`.

    Returns:
        list: One row: the image, the masked input, the reconstruction.
    """
    latent, mask, ids_restore = model.backbone(x)
    pred = model.neck(latent, ids_restore)[0]
    p = model.head.patch_size
    _, c, h, w = x.shape
    grid = (h // p, w // p)
    raw = patchify(x, p)[0]
    mask = mask[0].bool()
    pixels = _to_pixels(pred, raw, model.head.norm_pix)
    shown = torch.where(mask[:, None], torch.zeros_like(raw), raw)
    recon = torch.where(mask[:, None], pixels, raw)
    drawn = [_rgb(unpatchify(t[None], p, grid, c)[0], mean, std, zoom)
             for t in (raw, shown, recon)]
    for m_idx in torch.nonzero(mask).flatten().tolist():
        r, cc = divmod(m_idx, grid[1])
        drawn[1][r * p * zoom:(r + 1) * p * zoom,
                 cc * p * zoom:(cc + 1) * p * zoom] = 128
    return [[_label(drawn[0], 'image'), _label(drawn[1], 'masked input'),
             _label(drawn[2], 'reconstruction')]]


def _hog_glyphs(feat: torch.Tensor, cell_px: int, nbins: int) -> np.ndarray:
    """Draw a HOG map ``[3 * nbins, h, w]``: per cell, one line per bin
    along the edge direction, brightness = the bin's value (RGB summed)."""
    hist = feat.reshape(-1, nbins, *feat.shape[-2:]).sum(0)
    hist = hist / hist.max().clamp(min=1e-6)
    h, w = hist.shape[-2:]
    canvas = np.zeros((h * cell_px, w * cell_px, 3), np.uint8)
    half = cell_px / 2
    for b in range(nbins):
        phi = (b + 0.5) * np.pi / nbins  # gradient angle: atan2(gx, gy)
        dx, dy = np.cos(phi) * half, -np.sin(phi) * half  # edge direction
        for i in range(h):
            for j in range(w):
                v = int(255 * float(hist[b, i, j]))
                if v < 8:
                    continue
                cx, cy = (j + 0.5) * cell_px, (i + 0.5) * cell_px
                cv2.line(canvas, (int(cx - dx), int(cy - dy)),
                         (int(cx + dx), int(cy + dy)), (v, v, v), 1,
                         cv2.LINE_AA)
    return canvas


def localmim_grid(model: torch.nn.Module, x: torch.Tensor, mean: torch.Tensor,
                  std: torch.Tensor, zoom: int) -> Rows:
    """Rows of drawings for one LocalMIM image.

    Args are those of :func:`lomar_grid`.

    Returns:
        list: The image and the masked input, then the target and the
        prediction of the finest and of the coarsest tap.
    """
    preds, targets, mask, grid = model.predict_targets(x)
    p = model.backbone.patch_size
    img = _rgb(x[0], mean, std, zoom)
    masked = img.copy()
    for m_idx in torch.nonzero(mask[0]).flatten().tolist():
        r, cc = divmod(m_idx, grid[1])
        masked[r * p * zoom:(r + 1) * p * zoom,
               cc * p * zoom:(cc + 1) * p * zoom] = 128
    rows = [[_label(img, 'image'), _label(masked, 'masked input')]]
    gen = model.target_generator
    for k in (0, len(preds) - 1):
        cell = model.cells[k]
        tap = model.backbone.out_indices[k]
        pred, target = preds[k][0], targets[k][0]
        if hasattr(gen, 'nbins'):
            drawn = [_hog_glyphs(t, cell * zoom, gen.nbins)
                     for t in (target, pred)]
        else:
            h, w = target.shape[-2:]
            raw = patchify(x, cell)[0]
            t_pix = _to_pixels(target.flatten(1).t(), raw, gen.norm_pix)
            p_pix = _to_pixels(pred.flatten(1).t(), raw, gen.norm_pix)
            drawn = [_rgb(unpatchify(t[None], cell, (h, w), x.shape[1])[0],
                          mean, std, zoom) for t in (t_pix, p_pix)]
        rows.append([
            _label(drawn[0], f'block {tap} target ({cell}px cells)'),
            _label(drawn[1], f'block {tap} prediction')
        ])
    return rows


DRAWERS: Dict[str, Callable[..., Rows]] = {
    'LoMaR': lomar_grid,
    'MAE': mae_grid,
    'LocalMIM': localmim_grid
}


def visualize_reconstruction_main(
        argv: Optional[List[str]] = None) -> List[str]:
    """Run ``tools/analysis/visualize_reconstruction.py``.

    Args:
        argv: The command line without the program name; ``None`` reads
            ``sys.argv``.

    Returns:
        list: The PNG files written, one per image.

    Raises:
        SystemExit: The model type has no drawer, or an image is missing or
            unreadable.
    """
    args = build_reconstruction_parser().parse_args(argv)
    cfg = Config.fromfile(args.config)
    kind = cfg.model.get('type')
    if kind not in DRAWERS:
        raise SystemExit(f'{args.config}: model type {kind!r} is not one of '
                         f'{sorted(DRAWERS)}')
    for path in args.images:
        if not osp.isfile(path):
            raise SystemExit(f'image not found: {path}')
    model = build_model(cfg, args.checkpoint, args.device)
    size = args.size or _train_size(cfg)
    pre = model.data_preprocessor
    mean = pre.mean.flatten().to(args.device)
    std = pre.std.flatten().to(args.device)
    os.makedirs(args.out_dir, exist_ok=True)
    torch.manual_seed(args.seed)
    written = []
    for path in args.images:
        bgr = cv2.imread(path)
        if bgr is None:
            raise SystemExit(f'cannot read image {path}')
        rgb = cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), (size, size),
                         interpolation=cv2.INTER_CUBIC)
        x = torch.from_numpy(rgb).permute(2, 0, 1).float().to(args.device)
        x = ((x - mean[:, None, None]) / std[:, None, None])[None]
        with torch.no_grad():
            rows = DRAWERS[kind](model, x, mean, std, args.zoom)
        out = osp.join(args.out_dir,
                       osp.splitext(osp.basename(path))[0] + '.png')
        cv2.imwrite(out, cv2.cvtColor(_grid(rows), cv2.COLOR_RGB2BGR))
        written.append(out)
    print(f'wrote {len(written)} reconstruction grid(s) to {args.out_dir}')
    return written
