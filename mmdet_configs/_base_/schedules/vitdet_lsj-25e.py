# ViTDet's schedule shortened to 25 epochs for quick comparisons: the same
# optimiser, warm-up and lr steps at the same fractions (88% and 96%) of a
# quarter of the iterations.
_base_ = './vitdet_lsj-100e.py'

# 25 ep = 46094 iters * 64 images / 118000 images per epoch
max_iters = 46094
val_interval = 5000
param_scheduler = [
    _base_.param_scheduler[0],
    dict(
        _base_.param_scheduler[1],
        end=max_iters,
        milestones=[40972, 44387])  # 22 and 24 epochs
]
train_cfg = dict(
    max_iters=max_iters,
    val_interval=val_interval,
    dynamic_intervals=[(max_iters // val_interval * val_interval + 1,
                        max_iters)])
